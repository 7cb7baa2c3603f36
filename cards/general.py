"""The cards that are not about one request: welcome, help and plain messages (errors, confirmations)."""

from __future__ import annotations

from typing import Any

from cards.base import actions, build, command_button, heading, notice, para, section
from cards.text import escape
from procedure.roles import Role

# (command as typed, what it does): the text commands the bot understands.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("nueva solicitud", "Registra una solicitud de pieza audiovisual (formulario)."),
    ("mis solicitudes", "Las solicitudes que usted registró y en qué paso están."),
    ("mis pendientes", "Los pasos que le toca atender ahora."),
    ("estado <n>", "La tarjeta actual de la solicitud N° n, con sus acciones."),
    ("historial <n>", "Quién hizo qué y cuándo en la solicitud N° n."),
    ("pieza de terceros", "Remite a OCOIM una pieza que su área contrató con un proveedor (sección 7.4)."),
    ("agenda", "OCOIM: las solicitudes en curso por fase, con responsable, plazo e indicadores."),
    ("exportar", "OCOIM: el cuadro de seguimiento en Excel."),
    ("reportar línea gráfica", "OCOIM: avisa al Coordinador(a) de una pieza que no cumple el Manual de Identidad."),
    ("ayuda", "Esta lista de comandos."),
)
LOCAL_COMMAND = ("rol <rol> [área]", "Solo en modo local: actuar con otro rol para probar, p. ej. "
                 "«rol DIRECTOR DE». Roles: " + ", ".join(r.value for r in Role) + ".")


def _main_buttons():
    return actions(
        command_button("Nueva solicitud", "nueva solicitud"),
        command_button("Mis solicitudes", "mis solicitudes"),
        command_button("Mis pendientes", "mis pendientes"),
        command_button("Ayuda", "ayuda"),
    )


def welcome_card(is_local: bool) -> dict[str, Any]:
    """The first message a person gets: what Claqueta does and where to start."""
    body = heading("Hola, soy Claqueta 🎬",
                   subtitle="Atiendo el procedimiento de producción de piezas audiovisuales de OCOIM.")
    body += [
        para("Con Claqueta un área usuaria **registra su solicitud** de video y sigue su avance. A cada "
             "responsable le llega una tarjeta con el paso que le toca (guion, storyboard, revisiones, "
             "conformidades, producción y difusión), qué se espera y los botones para completarlo."),
        para("Escriba un comando o use los botones: **nueva solicitud**, **mis solicitudes**, "
             "**mis pendientes**, **estado <n>**, **historial <n>**, **agenda** y **ayuda**.".replace("<n>", "n")),
    ]
    if is_local:
        body.append(notice("Modo local: no hay conexión con Microsoft 365; los correos y reuniones se guardan "
                           "como archivos. Use **rol <rol> [área]** para probar con otro rol."
                           .replace("<rol> [área]", "ROL ÁREA"), "accent"))
    body.append(_main_buttons())
    return build(body, fallback_text="Hola, soy Claqueta. Escriba «ayuda» para ver los comandos.")


def help_card(is_coordinator: bool, is_local: bool) -> dict[str, Any]:
    """Every command with one line each."""
    body = heading("Ayuda de Claqueta", subtitle="Comandos que puede escribir en este chat")
    rows = list(COMMANDS)
    if is_local:
        rows.append(LOCAL_COMMAND)
    for command, what in rows:
        body.append(para(f"**{escape(command)}** — {escape(what)}", spacing="Small"))
    body.append(section("En las tarjetas de cada paso"))
    body.append(para("Complete el paso con enlaces a sus entregables (o adjunte el archivo en el chat), dé "
                     "conformidad o solicite ajustes con una observación, y convoque reuniones de revisión."))
    if is_coordinator:
        body.append(para("Como Coordinador(a) también puede **reasignar** un paso, **poner en espera**, "
                         "**reanudar** o **cancelar** una solicitud desde su tarjeta."))
    body.append(_main_buttons())
    return build(body, fallback_text="Comandos: " + ", ".join(c for c, _ in rows))


def message_card(text: str, style: str = "default") -> dict[str, Any]:
    """A short message (an error or a confirmation); `text` is plain and is escaped here.

    `style`: "default", "good" (done), "attention" (error), "warning" or "accent".
    """
    if style == "default":
        return build([para(escape(text))], fallback_text=text[:200])
    return build([notice(escape(text), style)], fallback_text=text[:200])
