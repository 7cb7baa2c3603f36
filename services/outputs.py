"""The procedure's outputs as people read them: the Spanish email and meeting texts for each step."""

from __future__ import annotations

from html import escape

from procedure.model import Deliverable, Procedure
from procedure.request import Effect, Request
from procedure.roles import recipient_label
from services.ports import Email


def subject(request: Request, step_id: str, proc: Procedure) -> str:
    step = proc[step_id]
    title = " ".join(request.title.split())
    return f"[Solicitud {request.number}] {title} — {step.id} {step.name}"


def _deliverable_rows(items: list[dict]) -> str:
    rows = []
    for item in items:
        label = Deliverable(item["kind"]).label
        ref = item.get("ref", "")
        if ref.startswith(("http://", "https://")):
            value = f'<a href="{escape(ref, quote=True)}">{escape(item.get("name") or ref)}</a>'
        else:
            value = escape(ref)
        rows.append(f"<li><b>{escape(label)}:</b> {value}</li>")
    return f"<ul>{''.join(rows)}</ul>" if rows else ""


def _request_facts(request: Request) -> str:
    facts = [
        ("Solicitud N°", request.number),
        ("Título", request.title),
        ("Área usuaria", request.area),
        ("Fecha de entrega prevista", request.due_date.strftime("%d/%m/%Y")),
    ]
    if request.classification:
        facts.append(("Tipo", request.classification.piece_type.label))
        facts.append(("Tema", request.classification.topic.label))
    if request.production_deadline:
        facts.append(("Plazo de producción", request.production_deadline.strftime("%d/%m/%Y")))
    rows = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(str(v))}</td></tr>" for k, v in facts)
    return f'<table cellpadding="4">{rows}</table>'


def email_for(proc: Procedure, request: Request, effect: Effect, recipients: list[str], teams_link: str) -> Email:
    payload = effect.payload
    step = proc[payload["step_id"]]
    verdict = payload.get("verdict")
    if verdict == "changes":
        last = request.observations[-1] if request.observations else None
        lead = (f"Se solicitaron ajustes en <b>{escape(step.id)} {escape(step.name)}</b>"
                + (f" (ronda {last.round}). Observación de {escape(last.by_name)}:</p>"
                   f"<blockquote>{escape(last.text)}</blockquote><p>" if last else "."))
    else:
        lead = f"Se completó <b>{escape(step.id)} {escape(step.name)}</b>. Salida: {escape(payload.get('output', ''))}."
    to_line = ", ".join(recipient_label(r) for r in payload.get("recipients", []))
    link = f'<p><a href="{escape(teams_link, quote=True)}">Abrir la solicitud en Teams</a></p>' if teams_link else ""
    html = (
        "<html><body style=\"font-family:Segoe UI,Arial,sans-serif\">"
        f"<p>{lead}</p>"
        f"{_deliverable_rows(payload.get('deliverables', []))}"
        f"{_request_facts(request)}"
        f"<p style=\"color:#666\">Dirigido a: {escape(to_line)}</p>{link}"
        "<p style=\"color:#666\">Mensaje enviado por Claqueta, OCOIM — PROINVERSIÓN.</p>"
        "</body></html>"
    )
    return Email(to=tuple(recipients), subject=subject(request, step.id, proc), html=html,
                 idempotency_key=effect.id)


# What the director reviews at each conformity step (the latest of each); other steps show whatever exists.
APPROVAL_MATERIAL: dict[str, tuple[Deliverable, ...]] = {
    "PRE-14": (Deliverable.SCRIPT, Deliverable.STORYBOARD),
    "PRO-11": (Deliverable.FIRST_VERSION,),
    "POS-04": (Deliverable.FINAL_VERSION,),
}
_ANY_MATERIAL = (Deliverable.SCRIPT, Deliverable.STORYBOARD, Deliverable.PRELIMINARY_VERSION,
                 Deliverable.FIRST_VERSION, Deliverable.FINAL_VERSION)


def approval_email(proc: Procedure, request: Request, effect: Effect, recipients: list[str], teams_link: str,
                   card: dict | None) -> Email:
    """The email that asks the area's director for conformity; with `card`, Outlook shows it with its buttons."""
    step = proc[effect.payload["step_id"]]
    round_no = request.rounds(step.id) + 1
    question = step.decision or "¿Es conforme?"
    lead = (f"Se solicita su conformidad en <b>{escape(step.id)} {escape(step.name)}</b>"
            + (f" (ronda {round_no})" if round_no > 1 else "") + f": {escape(question)}")
    material = []
    for kind in APPROVAL_MATERIAL.get(step.id, _ANY_MATERIAL):
        record = request.latest(kind)
        if record:
            material.append({"kind": kind.value, "ref": record.ref, "name": record.name})
    observations = request.observations_for(step.id)
    notes = "".join(
        f"<li>Ronda {o.round} · {escape(o.by_name)} · {o.at.strftime('%d/%m/%Y %H:%M')}:"
        f"<blockquote>{escape(o.text)}</blockquote></li>" for o in observations[-8:])
    earlier = f"<p><b>Observaciones de rondas anteriores:</b></p><ul>{notes}</ul>" if notes else ""
    if card is not None:
        how = ("Puede dar su conformidad o solicitar ajustes desde la tarjeta de este correo en Outlook, "
               "o desde Claqueta en Teams: lo que decida en uno se ve en el otro.")
    else:
        how = "Dé su conformidad o solicite ajustes desde Claqueta en Teams."
    link = f'<p><a href="{escape(teams_link, quote=True)}">Abrir la solicitud en Teams</a></p>' if teams_link else ""
    html = (
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>"
        "<body style=\"font-family:Segoe UI,Arial,sans-serif\">"
        f"<p>{lead}</p>"
        f"{_deliverable_rows(material)}"
        f"{earlier}"
        f"{_request_facts(request)}"
        f"<p>{escape(how)}</p>{link}"
        "<p style=\"color:#666\">Mensaje enviado por Claqueta, OCOIM — PROINVERSIÓN.</p>"
        "</body></html>"
    )
    return Email(to=tuple(recipients), subject=subject(request, step.id, proc), html=html,
                 idempotency_key=effect.id, approval_card=card)


def meeting_body(proc: Procedure, request: Request, effect: Effect) -> str:
    step = proc[effect.payload["step_id"]]
    links = []
    for kind in (Deliverable.SCRIPT, Deliverable.STORYBOARD, Deliverable.PRELIMINARY_VERSION,
                 Deliverable.FIRST_VERSION, Deliverable.FINAL_VERSION):
        record = request.latest(kind)
        if record:
            links.append({"kind": kind.value, "ref": record.ref, "name": record.name})
    notes = effect.payload.get("notes", "")
    return (
        f"<p>{escape(step.name)} — solicitud {escape(request.number)}: «{escape(request.title)}».</p>"
        + (f"<p>{escape(notes)}</p>" if notes else "")
        + _deliverable_rows(links)
        + _request_facts(request)
    )
