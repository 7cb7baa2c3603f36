"""Filing a request (section 6 of the procedure): the intake form and the summary sent once it is filed."""

from __future__ import annotations

from datetime import date
from typing import Any, Iterable, Mapping

from microsoft_teams.cards import CardElement, Choice, ChoiceSetInput, DateInput, TextBlock, TextInput

from cards.base import actions, build, facts, heading, notice, para
from cards.text import escape, escape_line, fmt_date, lima_today, plain
from cards.verbs import EXPECTED_TYPE_UNKNOWN, CardData, Inputs, Verb, execute_action, split_choices
from procedure.engine import MAX_TEXT, MAX_TITLE, responsible_role
from procedure.model import END, Procedure
from procedure.request import Request
from procedure.roles import Role


def _error(errors: Mapping[str, str], field: str) -> list[CardElement]:
    message = errors.get(field)
    return [TextBlock(text=escape(message), color="Attention", wrap=True, spacing="None")] if message else []


def _value(values: Mapping[str, Any], field: str) -> str | None:
    value = values.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value) if field == Inputs.LINKS else ",".join(str(v) for v in value)
    return str(value)


def _title_and_area(areas: Mapping[str, str], values: Mapping[str, Any], errors: Mapping[str, str], title_label: str,
                    example: str) -> list[CardElement]:
    area_choices = [Choice(title=plain(name or code, 80), value=code) for code, name in areas.items()]
    area = _value(values, Inputs.AREA)
    return [
        TextInput(id=Inputs.TITLE, label=title_label, is_required=True, max_length=MAX_TITLE, placeholder=example,
                  value=_value(values, Inputs.TITLE), error_message="Indique el título (hasta 200 caracteres)."),
        *_error(errors, Inputs.TITLE),
        ChoiceSetInput(id=Inputs.AREA, label="Área usuaria", is_required=True, style="compact", choices=area_choices,
                       value=area if area in areas else None, placeholder="Elija su área",
                       error_message="Elija el área usuaria."),
        *_error(errors, Inputs.AREA),
    ]


def intake_form_card(areas: Mapping[str, str], values: Mapping[str, Any] | None = None,
                     errors: Mapping[str, str] | None = None, *, today: date | None = None) -> dict[str, Any]:
    """The form an area fills to request a piece; shown again with `values` and Spanish `errors` per field.

    `areas` maps area code → name. `values` and `errors` are keyed by the Inputs ids (title, area, due_date,
    expected_type, purpose, inputs, links, involved_areas).
    """
    values = values or {}
    errors = errors or {}
    today = today or lima_today()
    area_choices = [Choice(title=plain(name or code, 80), value=code) for code, name in areas.items()]
    involved = [a for a in split_choices(_value(values, Inputs.INVOLVED_AREAS)) if a in areas]

    body: list[CardElement] = heading(
        "Nueva solicitud de pieza audiovisual",
        subtitle="Complete los datos del requerimiento (sección 6 del procedimiento). El título se mantiene "
                 "durante toda la atención del servicio.",
    )
    if errors:
        body.append(notice("Revise los campos marcados en rojo.", "attention"))
    body += [
        *_title_and_area(areas, values, errors, "Título de la solicitud", "Ej.: Video animado sobre el proyecto …"),
        DateInput(id=Inputs.DUE_DATE, label="Fecha de entrega prevista o tentativa", is_required=True,
                  placeholder="dd/mm/aaaa",
                  min=today.isoformat(), value=_value(values, Inputs.DUE_DATE),
                  error_message="Indique una fecha de entrega desde hoy."),
        *_error(errors, Inputs.DUE_DATE),
        ChoiceSetInput(id=Inputs.EXPECTED_TYPE, label="¿Es un video animado?", style="expanded",
                       choices=[Choice(title="Sí (tipo A: video animado)", value="A"),
                                Choice(title="No (tipo B: con o sin grabación de tomas)", value="B"),
                                Choice(title="No lo sé", value=EXPECTED_TYPE_UNKNOWN)],
                       value=_value(values, Inputs.EXPECTED_TYPE) or EXPECTED_TYPE_UNKNOWN),
        *_error(errors, Inputs.EXPECTED_TYPE),
        TextInput(id=Inputs.PURPOSE, label="¿Para qué se usará?", is_multiline=True, max_length=MAX_TEXT,
                  placeholder="Público, canal de difusión, evento…", value=_value(values, Inputs.PURPOSE)),
        *_error(errors, Inputs.PURPOSE),
        TextInput(id=Inputs.INPUTS, label="Insumos informativos", is_multiline=True, max_length=MAX_TEXT,
                  placeholder="Información que debe transmitir la pieza; puede adjuntar archivos en el chat.",
                  value=_value(values, Inputs.INPUTS)),
        *_error(errors, Inputs.INPUTS),
        TextInput(id=Inputs.LINKS, label="Enlaces a material (uno por línea)", is_multiline=True,
                  placeholder="https://…", value=_value(values, Inputs.LINKS)),
        *_error(errors, Inputs.LINKS),
        ChoiceSetInput(id=Inputs.INVOLVED_AREAS, label="Áreas involucradas (opcional)", is_multi_select=True,
                       style="compact", choices=area_choices, value=",".join(involved) or None),
        *_error(errors, Inputs.INVOLVED_AREAS),
        actions(execute_action(Verb.INTAKE_SUBMIT, "Registrar solicitud", style="positive")),
    ]
    return build(body, fallback_text="Formulario de nueva solicitud de pieza audiovisual.")


def pending_label(proc: Procedure, request: Request, people: Mapping[str, str] | None = None) -> str:
    """Who must act now: the named person, or the role (the area's Director for a director step)."""
    role = responsible_role(proc, request)
    if role is None:
        return "—"
    named = request.assignees.get(role)
    if named and people and named in people:
        return people[named]
    if role == Role.DIRECTOR.value:
        return f"Director(a) del área {request.area}"
    return Role(role).label


def current_step_label(proc: Procedure, request: Request) -> str:
    if request.step_id == END or request.step_id not in proc:
        return "Concluida"
    step = proc[request.step_id]
    return f"{step.id} · {step.name}"


def request_summary_card(proc: Procedure, request: Request, warnings: Iterable[str] = ()) -> dict[str, Any]:
    """What the requester sees once the request is filed: its data, current step and lead-time warnings."""
    body: list[CardElement] = heading(f"Solicitud N° {escape_line(request.number)} registrada",
                                      subtitle=escape_line(request.title))
    for warning in warnings:
        body.append(notice(escape(warning), "attention"))
    body.append(facts([
        ("Solicitud N°", request.number),
        ("Título", request.title),
        ("Área usuaria", request.area),
        ("Fecha de entrega", fmt_date(request.due_date)),
        ("Estado", request.status_label),
        ("Paso actual", current_step_label(proc, request)),
        ("Pendiente de", pending_label(proc, request)),
        ("Áreas involucradas", ", ".join(request.involved_areas) if request.involved_areas else None),
    ]))
    body.append(para("Le avisaré en cada hito: conformidad del guion y storyboard, primera versión lista para "
                     "revisión y entrega de la pieza.", subtle=True))
    card = CardData(number=request.number, version=request.version, step=request.step_id)
    body.append(actions(card.execute(Verb.REQUEST_SHOW, "Ver estado"),
                        card.execute(Verb.REQUEST_HISTORY, "Ver historial")))
    return build(body, fallback_text=f"Solicitud N° {request.number} registrada.")


def third_party_form_card(areas: Mapping[str, str], values: Mapping[str, Any] | None = None,
                          errors: Mapping[str, str] | None = None, *, today: date | None = None) -> dict[str, Any]:
    """7.4: an area sends OCOIM a piece its own contractor produced, for review and conformity."""
    values, errors, today = values or {}, errors or {}, today or lima_today()
    body: list[CardElement] = heading(
        "Revisión de una pieza elaborada por terceros",
        subtitle="Si su área contrató a un proveedor, remita la pieza a OCOIM para su revisión técnica y "
                 "conformidad (sección 7.4 del procedimiento).",
    )
    if errors:
        body.append(notice("Revise los campos marcados en rojo.", "attention"))
    body += [
        *_title_and_area(areas, values, errors, "Título de la pieza", "Ej.: Spot del proyecto …"),
        TextInput(id=Inputs.PIECE_URL, label="Enlace a la pieza", is_required=True, placeholder="https://…",
                  value=_value(values, Inputs.PIECE_URL), error_message="Indique el enlace a la pieza."),
        *_error(errors, Inputs.PIECE_URL),
        TextInput(id=Inputs.PRODUCER, label="Proveedor que la elaboró", max_length=200,
                  placeholder="Nombre de la productora", value=_value(values, Inputs.PRODUCER)),
        DateInput(id=Inputs.DUE_DATE, label="¿Para cuándo necesita la conformidad?", is_required=True,
                  placeholder="dd/mm/aaaa", min=today.isoformat(), value=_value(values, Inputs.DUE_DATE),
                  error_message="Indique una fecha desde hoy."),
        *_error(errors, Inputs.DUE_DATE),
        TextInput(id=Inputs.PURPOSE, label="¿Dónde se difundirá?", is_multiline=True, max_length=MAX_TEXT,
                  placeholder="Canal, público, evento…", value=_value(values, Inputs.PURPOSE)),
        actions(execute_action(Verb.THIRD_PARTY_SUBMIT, "Remitir a OCOIM", style="positive")),
    ]
    return build(body, fallback_text="Remitir una pieza elaborada por terceros a OCOIM.")
