"""Reminder cards (before, on and after a step's deadline), the coordinator's morning digest, and the brand report."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping, Sequence

from microsoft_teams.cards import TextInput

from cards.base import actions, build, facts, heading, notice, para, section
from cards.text import escape_line, fmt_date, plain
from cards.verbs import CardData, Inputs, Verb, execute_action

HEADLINES = {
    "reminder_before": "Recordatorio: {step} vence mañana",
    "reminder_due": "Recordatorio: {step} vence hoy",
    "reminder_overdue": "{step} está vencido",
    "approval_overdue": "Conformidad vencida: {step}",
    "escalation": "Escalamiento: {step} sigue vencido",
}
MAX_DIGEST_ROWS = 8


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def reminder_card(payload: Mapping[str, Any], number: str, version: int) -> dict[str, Any]:
    """A reminder that can be acted on: open the step's card, or (for the person responsible) snooze a day."""
    template = payload.get("template", "reminder_due")
    step = payload.get("step_id", "")
    headline = HEADLINES.get(template, "Recordatorio: {step}").format(step=step)
    body = heading(headline, subtitle=f"Solicitud N° {escape_line(number)} · {escape_line(payload.get('title'), 120)}")
    body.append(facts([
        ("Actividad", f"{step} · {payload.get('step_name', '')}"),
        ("Plazo", fmt_date(_day(payload.get("deadline")))),
        ("Situación", payload.get("status_label")),
        ("Director(a)", payload.get("director") or None),
    ]))
    if template == "escalation":
        body.append(notice("El plazo se superó hace varios días hábiles; se informa a la Jefatura de OCOIM.",
                           "attention"))
    card = CardData(number=number, version=version, step=step)
    buttons = [card.execute(Verb.REQUEST_SHOW, "Abrir tarjeta", style="positive")]
    if template.startswith("reminder_"):
        buttons.append(card.execute(Verb.REMINDER_SNOOZE, "Posponer un día"))
    body.append(actions(*buttons))
    return build(body, fallback_text=plain(headline, 120))


def _rows(items: Sequence[Mapping[str, Any]], extra: str | None = None, total: int | None = None) -> list:
    elements = []
    total = len(items) if total is None else total
    for item in items[:MAX_DIGEST_ROWS]:
        tail = f" · {escape_line(item.get(extra), 60)}" if extra and item.get(extra) else ""
        elements.append(para(f"**N° {escape_line(item.get('number'))}** · {escape_line(item.get('title'), 80)} · "
                             f"{escape_line(item.get('step_id'))} · {escape_line(item.get('status_label'), 60)}{tail}"))
    if total > min(len(items), MAX_DIGEST_ROWS):
        elements.append(para(f"… y {total - min(len(items), MAX_DIGEST_ROWS)} más (escriba «agenda»).", subtle=True))
    if not items:
        elements.append(para("Ninguna.", subtle=True))
    return elements


def digest_card(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The coordinator's one card each working morning."""
    day = _day(payload.get("day"))
    body = heading("Resumen del día", subtitle=fmt_date(day))
    failed = payload.get("failed_effects", {}) or {}
    for title, key, extra in (
        ("Actividades vencidas", "overdue", None),
        ("Vencen hoy o mañana", "due_soon", None),
        ("Esperan conformidad de directores", "awaiting_directors", "director"),
        ("En riesgo de no llegar a la fecha de entrega", "at_risk", None),
    ):
        items = payload.get(key, []) or []
        total = (payload.get("totals") or {}).get(key, len(items))
        body.append(section(f"{title} ({total})"))
        body += _rows(items, extra, total)
    body.append(section(f"Envíos fallidos ({failed.get('count', 0)})"))
    if failed.get("count"):
        body.append(notice("Algunos correos, reuniones o avisos no se pudieron entregar tras varios intentos. "
                           "Revise la configuración o reintente.", "attention"))
    else:
        body.append(para("Ninguno.", subtle=True))
    body.append(actions(execute_action(Verb.AGENDA_FILTER, "Abrir la agenda")))
    return build(body, fallback_text="Resumen del día de Claqueta")


def brand_report_form() -> dict[str, Any]:
    """7.4: any OCOIM member reports a piece that breaks the brand guidelines."""
    body = heading("Reportar incumplimiento de la línea gráfica",
                   subtitle="Manual de Identidad Institucional (sección 7.4 del procedimiento)")
    body += [
        TextInput(id=Inputs.BRAND_PIECE, label="Pieza (enlace o nombre)", is_required=True, max_length=500,
                  error_message="Indique la pieza."),
        TextInput(id=Inputs.BRAND_DETAIL, label="¿Qué incumple?", is_multiline=True, is_required=True,
                  max_length=2000, error_message="Describa el incumplimiento."),
        actions(execute_action(Verb.BRAND_REPORT, "Enviar al Coordinador(a)", style="positive")),
    ]
    return build(body, fallback_text="Reportar incumplimiento de la línea gráfica")
