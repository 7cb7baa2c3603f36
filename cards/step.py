"""The card of a request at its current step: what is expected, the material to review, and who may do what."""

from __future__ import annotations

from dataclasses import dataclass

from datetime import date
from typing import Any, Iterable, Mapping, Sequence

from microsoft_teams.cards import (
    CardElement,
    Choice,
    ChoiceSetInput,
    DateInput,
    RefreshDefinition,
    TextInput,
    TimeInput,
    ToggleInput,
)

from cards.base import (
    MAX_REFRESH_USERS,
    actions,
    build,
    facts,
    heading,
    notice,
    open_url,
    para,
    section,
    show_card,
)
from cards.intake import current_step_label, pending_label
from cards.text import escape, escape_line, fmt_date, fmt_short, lima_today, plain
from cards.verbs import (
    DISTRIBUTION_CHANNELS,
    MEETING_MINUTES,
    OPTION_EMAIL,
    OPTION_MEETING,
    CardData,
    Inputs,
    Verb,
    execute_action,
)
from procedure.engine import LINK_DELIVERABLES, MAX_TEXT, Action, archive_path_for, responsible_role
from procedure.model import END, Deliverable, Procedure, Step, StepKind
from procedure.request import Audience, HistoryEntry, Observation, PieceType, Request, Service, Status, Topic
from procedure.roles import Role, recipient_label

D = Deliverable
# The material a review (or the meeting that convenes it) is about: what the reviewer opens.
REVIEW_MATERIAL: dict[str, tuple[Deliverable, ...]] = {
    "PRE-05": (D.SCRIPT, D.STORYBOARD), "PRE-09": (D.SCRIPT, D.STORYBOARD), "PRE-10": (D.SCRIPT, D.STORYBOARD),
    "PRE-13": (D.SCRIPT, D.STORYBOARD), "PRE-14": (D.SCRIPT, D.STORYBOARD),
    "PRO-07": (D.PRELIMINARY_VERSION,), "PRO-10": (D.PRELIMINARY_VERSION, D.FIRST_VERSION),
    "PRO-11": (D.FIRST_VERSION,), "POS-04": (D.FINAL_VERSION,),
}
# Steps that may present by email instead of a meeting (their output is an email, not an invitation).
MEETING_OR_EMAIL = frozenset({"PRE-13", "PRO-10"})
MAX_OBSERVATIONS = 8  # the latest ones; the history card has them all


@dataclass(frozen=True)
class AttachedFile:
    """A file someone shared in the chat: `url` stays valid (their OneDrive), `source` downloads it now."""

    name: str
    url: str
    source: str


def _review_of(proc: Procedure, step: Step) -> Step | None:
    """The review a step belongs to: itself, or the review that sent it back (adjust steps)."""
    if step.kind is StepKind.REVIEW:
        return step
    return next((r for r in proc.reviews if r.adjust_step == step.id), None)


def _round(proc: Procedure, request: Request, step: Step) -> int | None:
    review = _review_of(proc, step)
    if review is None:
        return None
    done = request.rounds(review.id)
    return done + 1 if step.kind is StepKind.REVIEW else max(done, 1)


def _summary(proc: Procedure, request: Request, step: Step | None) -> list[CardElement]:
    c = request.classification
    round_no = _round(proc, request, step) if step else None
    rows: list[tuple[str, str | None]] = [
        ("Solicitud N°", request.number),
        ("Título", request.title),
        ("Área usuaria", request.area),
        ("Tipo", c.piece_type.label if c else None),
        ("Tema", c.topic.label if c else None),
        ("Proyecto APP/PA", (c.project_name or "Sí") if c and c.investment_project else None),
        ("Fecha de entrega", fmt_date(request.due_date)),
        ("Plazo de producción", fmt_date(request.production_deadline) if request.production_deadline else None),
        ("Ronda de revisión", str(round_no) if round_no else None),
        ("Estado", request.status_label if request.status is not Status.ACTIVE else None),
        ("Motivo", request.status_reason if request.status is not Status.ACTIVE and request.status_reason else None),
    ]
    return [facts(rows)]


def _expected(step: Step) -> list[CardElement]:
    items: list[CardElement] = []
    if step.description:
        items.append(para(escape(step.description)))
    if step.deliverables:
        joiner = " y " if step.deliverable_rule == "all" else " y/o "
        items.append(para("**Entregables:** " + escape(joiner.join(d.label for d in step.deliverables))))
    if step.decision:
        items.append(para("**Decisión:** " + escape(step.decision)))
    to = ", ".join(recipient_label(r) for r in step.output.to)
    items.append(para(f"**Salida:** {escape(step.output.label)} → {escape(to)}", subtle=True))
    return items


def _material(proc: Procedure, request: Request, step: Step) -> list[CardElement]:
    """Links to the latest deliverables the step works on (only http(s) links become buttons)."""
    kinds = REVIEW_MATERIAL.get(step.id)
    if kinds is None:
        seen: list[Deliverable] = []
        for record in request.deliverables:
            if record.kind not in seen and record.kind not in (D.ARCHIVE_PATH, D.DISTRIBUTION_CHANNELS):
                seen.append(record.kind)
        kinds = tuple(seen)
    buttons, lines = [], []
    for kind in kinds:
        record = request.latest(kind)
        if record is None:
            continue
        suffix = f" (ronda {record.round})" if record.round > 1 else ""
        button = open_url(f"Ver {kind.label.lower()}{suffix}"[:60], record.ref)
        if button is not None:
            buttons.append(button)
        elif record.uploaded:
            lines.append(f"**{escape(kind.label)}{suffix}:** archivo adjunto «{escape_line(record.name or record.ref, 80)}»")
        else:
            lines.append(f"**{escape(kind.label)}{suffix}:** {escape_line(record.ref, 300)}")
    if step.id == proc.start:
        buttons += [b for b in (open_url(f"Enlace {i}", link.url) for i, link in enumerate(request.links, 1)) if b]
        if request.purpose:
            lines.append("**Para qué se usará:** " + escape_line(request.purpose, 600))
        if request.inputs:
            lines.append("**Insumos informativos:** " + escape(request.inputs[:1500]))
    if not buttons and not lines:
        return []
    items: list[CardElement] = [section("Material")]
    items += [para(line) for line in lines]
    if buttons:
        items.append(actions(*buttons[:6]))
    return items


def _observations(proc: Procedure, request: Request, step: Step) -> list[CardElement]:
    review = _review_of(proc, step)
    if review is None:
        return []
    observations: list[Observation] = request.observations_for(review.id)
    if not observations:
        return []
    shown = observations[-MAX_OBSERVATIONS:]
    items: list[CardElement] = [section(f"Observaciones de rondas anteriores ({review.id})")]
    if len(observations) > len(shown):
        items.append(para(f"Se muestran las últimas {len(shown)} de {len(observations)}.", subtle=True))
    for o in shown:
        kind = "ajustes solicitados" if o.decisive else "observación"
        items.append(para(f"Ronda {o.round} · {escape_line(o.by_name, 80)} · {fmt_short(o.at)} · {kind}",
                          subtle=True, spacing="Small"))
        items.append(para(escape(o.text), spacing="None"))
    return items


def _complete_inputs(proc: Procedure, request: Request, step: Step, today: date,
                     attached: Mapping[str, "AttachedFile"] | None = None) -> list[CardElement]:
    items: list[CardElement] = []
    c = request.classification
    if step.id == proc.start:
        items += [
            ChoiceSetInput(id=Inputs.PIECE_TYPE, label="Tipo de pieza", style="expanded",
                           choices=[Choice(title=t.label, value=t.value) for t in PieceType],
                           value=(c.piece_type.value if c else (request.expected_type.value
                                                                  if request.expected_type else None))),
            ChoiceSetInput(id=Inputs.TOPIC, label="Tema", style="compact", placeholder="Elija el tema",
                           choices=[Choice(title=t.label, value=t.value) for t in Topic],
                           value=c.topic.value if c else None),
            ToggleInput(id=Inputs.INVESTMENT_PROJECT, title="Está referida a un proyecto de APP o PA",
                        value="true" if c and c.investment_project else "false", value_on="true",
                        value_off="false"),
            TextInput(id=Inputs.PROJECT_NAME, label="Proyecto de APP o PA (si corresponde)", max_length=200,
                      value=c.project_name if c and c.project_name else None),
            ChoiceSetInput(id=Inputs.AUDIENCE, label="Público", style="compact",
                           choices=[Choice(title=a.label, value=a.value) for a in Audience],
                           value=(c.audience if c else Audience.EXTERNAL).value),
            ChoiceSetInput(id=Inputs.SERVICES, label="Servicios que requiere", is_multi_select=True,
                           style="expanded", choices=[Choice(title=s.label, value=s.value) for s in Service],
                           value=",".join(s.value for s in Service if s in (c.services if c else {Service.EDITING}))),
            ToggleInput(id=Inputs.OUTSIDE_PRODUCER, title="Requiere contratar una productora (servicios de terceros)",
                        value="true" if c and c.outside_producer else "false", value_on="true", value_off="false"),
        ]
    if step.id == "PRO-01":
        items.append(DateInput(id=Inputs.PRODUCTION_DEADLINE, label="Plazo de producción definido", placeholder="dd/mm/aaaa",
                               min=today.isoformat(), value=(request.production_deadline or request.due_date).isoformat()))
    if step.id == "PRE-17":
        items.append(TextInput(id=Inputs.CONTRACT_REF, label="Referencia del pedido o contrato (opcional)",
                               max_length=200, value=request.contract_ref or None))
    for kind in step.deliverables:
        if kind is D.DISTRIBUTION_CHANNELS:
            items.append(ChoiceSetInput(id=Inputs.CHANNELS, label="Canales de difusión", is_multi_select=True,
                                        style="expanded",
                                        choices=[Choice(title=t, value=k) for k, t in DISTRIBUTION_CHANNELS.items()]))
        elif kind is D.ARCHIVE_PATH:
            items.append(TextInput(id=Inputs.deliverable(kind), label=kind.label, max_length=300,
                                   value=request.archive_path or archive_path_for(request, today)))
        elif kind in LINK_DELIVERABLES:
            shared = (attached or {}).get(kind.value)
            items.append(TextInput(id=Inputs.deliverable(kind), label=kind.label, placeholder="https://…",
                                   max_length=2000, value=shared.url if shared else None))
            if shared:
                items.append(para(f"Archivo compartido en el chat: {escape_line(shared.name, 120)}", subtle=True,
                                  spacing="None"))
        else:
            items.append(TextInput(id=Inputs.deliverable(kind), label=kind.label, is_multiline=True,
                                   max_length=2000, placeholder="Enlaces (https://…) o descripción"))
    if any(k in LINK_DELIVERABLES for k in step.deliverables):
        rule = "al menos uno" if step.deliverable_rule == "any" and len(step.deliverables) > 1 else "cada uno"
        items.append(para(f"Pegue el enlace ({rule}) o adjunte el archivo en el chat.", subtle=True,
                          spacing="Small"))
    if step.kind is StepKind.MEETING:
        items += [
            para("**Reunión de revisión**" + (" (o envíe por correo)" if step.id in MEETING_OR_EMAIL else "")),
            DateInput(id=Inputs.MEETING_DATE, label="Fecha", min=today.isoformat(), placeholder="dd/mm/aaaa"),
            TimeInput(id=Inputs.MEETING_TIME, label="Hora", min="08:00", max="18:00", placeholder="hh:mm"),
            ChoiceSetInput(id=Inputs.MEETING_MINUTES, label="Duración", style="compact", value="60",
                           choices=[Choice(title=f"{m} minutos", value=str(m)) for m in MEETING_MINUTES]),
            TextInput(id=Inputs.MEETING_NOTES, label="Mensaje para los invitados (opcional)", is_multiline=True,
                      max_length=MAX_TEXT),
        ]
    else:
        items.append(TextInput(id=Inputs.COMPLETE_NOTE, label="Comentario (opcional)", is_multiline=True,
                               max_length=MAX_TEXT))
    return items


def _complete_buttons(card: CardData, step: Step, attached: Mapping[str, "AttachedFile"] | None = None) -> list[Any]:
    if attached:
        # The files shared in the chat travel with the click, so completing records them as uploads.
        files = {Inputs.ATTACHED_PREFIX + kind: {"name": f.name, "url": f.url, "source": f.source}
                 for kind, f in attached.items()}
        return [execute_action(Verb.STEP_COMPLETE, f"Completar {step.id}", {**card.data(), **files},
                               style="positive")]
    if step.kind is StepKind.MEETING:
        buttons = [card.execute(Verb.STEP_COMPLETE, "Convocar reunión", style="positive", option=OPTION_MEETING),
                   card.execute(Verb.MEETING_SLOTS, "Ver horarios libres")]
        if step.id in MEETING_OR_EMAIL:
            buttons.insert(1, card.execute(Verb.STEP_COMPLETE, "Enviar por correo", option=OPTION_EMAIL))
        return buttons
    return [card.execute(Verb.STEP_COMPLETE, f"Completar {step.id}", style="positive")]


def _reason_card(card: CardData, verb: Verb, input_id: str, label: str, button: str, *, required: bool,
                 style: str | None = None, extra: Sequence[CardElement] = ()) -> list[CardElement]:
    return [
        *extra,
        TextInput(id=input_id, label=label, placeholder=f"{label}…", is_multiline=True, is_required=required or None,
                  max_length=MAX_TEXT, error_message="Escriba el motivo." if required else None),
        actions(card.execute(verb, button, style=style)),
    ]


def _action_elements(proc: Procedure, request: Request, step: Step | None, viewer_actions: Sequence[Action],
                     people: Mapping[str, str], card: CardData, today: date,
                     attached: Mapping[str, "AttachedFile"] | None = None) -> list[CardElement]:
    items: list[CardElement] = []
    primary: list[Any] = []
    attached = attached or {}
    if step is not None and Action.COMPLETE in viewer_actions:
        items.append(section(f"Completar {step.id}" if step.kind is not StepKind.MEETING else "Convocar"))
        items += _complete_inputs(proc, request, step, today, attached)
        primary += _complete_buttons(card, step, attached)
    if step is not None and Action.APPROVE in viewer_actions:
        items.append(section(step.decision or "¿Es conforme?"))
        items.append(TextInput(id=Inputs.APPROVE_COMMENT, label="Comentario (opcional)", is_multiline=True,
                               max_length=MAX_TEXT))
        primary.append(card.execute(Verb.REVIEW_APPROVE, "Dar conformidad", style="positive"))
    if Action.REQUEST_CHANGES in viewer_actions:
        primary.append(show_card("Solicitar ajustes", _reason_card(
            card, Verb.REVIEW_CHANGES, Inputs.CHANGES_OBSERVATION, "Observación: qué debe ajustarse",
            "Enviar observación y solicitar ajustes", required=True, style="destructive")))
    if Action.OBSERVE in viewer_actions:
        primary.append(show_card("Agregar observación", _reason_card(
            card, Verb.REVIEW_OBSERVE, Inputs.OBSERVE_OBSERVATION, "Observación para el Director(a)",
            "Enviar observación", required=True)))
    manage: list[Any] = []
    role = responsible_role(proc, request)
    if Action.REASSIGN in viewer_actions and people and role not in (Role.DIRECTOR.value, Role.OCOIM_TEAM.value):
        choice = ChoiceSetInput(id=Inputs.REASSIGN_PERSON, label=f"Persona ({Role(role).label})" if role else "Persona",
                                style="compact", is_required=True, error_message="Elija a la persona.",
                                choices=[Choice(title=plain(name, 80), value=pid) for pid, name in people.items()],
                                value=request.assignees.get(role or "") if request.assignees.get(role or "") in people
                                else None)
        manage.append(show_card("Reasignar", _reason_card(
            card, Verb.REQUEST_REASSIGN, Inputs.REASSIGN_REASON, "Motivo (opcional)", "Reasignar",
            required=False, extra=[choice])))
    if Action.HOLD in viewer_actions:
        manage.append(show_card("Poner en espera", _reason_card(
            card, Verb.REQUEST_HOLD, Inputs.HOLD_REASON, "Motivo", "Poner en espera", required=True)))
    if Action.RESUME in viewer_actions:
        manage.append(show_card("Reanudar", _reason_card(
            card, Verb.REQUEST_RESUME, Inputs.RESUME_REASON, "Comentario (opcional)", "Reanudar",
            required=False, style="positive")))
    if Action.EDIT in viewer_actions:
        manage.append(show_card("Corregir datos", [
            para("El título no se puede cambiar.", subtle=True),
            DateInput(id=Inputs.EDIT_DUE_DATE, label="Fecha de entrega", min=today.isoformat(), placeholder="dd/mm/aaaa",
                      value=request.due_date.isoformat()),
            TextInput(id=Inputs.EDIT_PURPOSE, label="¿Para qué se usará?", is_multiline=True, max_length=MAX_TEXT,
                      value=request.purpose or None),
            TextInput(id=Inputs.EDIT_INPUTS, label="Insumos informativos", is_multiline=True, max_length=MAX_TEXT,
                      value=request.inputs or None),
            TextInput(id=Inputs.EDIT_LINKS, label="Enlaces (uno por línea)", is_multiline=True,
                      value="\n".join(link.url for link in request.links) or None),
            actions(card.execute(Verb.REQUEST_EDIT, "Guardar cambios", style="positive")),
        ]))
    if Action.CANCEL in viewer_actions:
        manage.append(show_card("Cancelar solicitud", _reason_card(
            card, Verb.REQUEST_CANCEL, Inputs.CANCEL_REASON, "Motivo de la cancelación", "Cancelar la solicitud",
            required=True, style="destructive")))
    if primary:
        items.append(actions(*primary))
    if manage:
        items.append(section("Gestión de la solicitud"))
        items.append(actions(*manage))
    return items


def _last_line(entries: Sequence[HistoryEntry]) -> CardElement | None:
    if not entries:
        return None
    last = max(entries, key=lambda e: (e.at, e.version, e.seq))
    return para(f"Último movimiento: {escape_line(last.summary, 300)} ({fmt_short(last.at)})", subtle=True)


def _header(proc: Procedure, request: Request, step: Step | None) -> list[CardElement]:
    if step is None:
        title = f"Solicitud N° {escape_line(request.number)} · {escape(request.status_label)}"
        return heading(title, subtitle=escape_line(request.title, 200))
    return heading(f"{step.id} · {escape(step.name)}", subtitle=f"Fase de {step.phase.label} · "
                   f"Solicitud N° {escape_line(request.number)}")


def _body(proc: Procedure, request: Request, *, viewer_actions: Sequence[Action], people: Mapping[str, str],
          notice_text: str | None, history_tail: Sequence[HistoryEntry], refreshed_for: str | None,
          today: date, attached: Mapping[str, "AttachedFile"] | None = None) -> list[CardElement]:
    step = proc.by_id.get(request.step_id) if request.step_id != END else None
    body: list[CardElement] = []
    if notice_text:
        body.append(notice(escape(notice_text), "warning"))
    body += _header(proc, request, step)
    if request.status is Status.ON_HOLD:
        body.append(notice(f"En espera: {escape_line(request.status_reason or 'sin motivo indicado', 300)}",
                           "attention"))
    elif request.status is Status.CANCELLED:
        body.append(notice(f"Cancelada: {escape_line(request.status_reason or 'sin motivo indicado', 300)}",
                           "attention"))
    elif request.status is Status.DELIVERED:
        done = "Conformidad dada" if request.third_party else "Pieza entregada"
        body.append(notice(f"{done} el {fmt_date(request.delivered_at)}.", "good"))
    if step is not None and request.status is not Status.CANCELLED:
        body += _expected(step)
    body.append(section("Resumen de la solicitud"))
    body += _summary(proc, request, step)
    if step is not None:
        body += _material(proc, request, step)
        body += _observations(proc, request, step)
    card = CardData(number=request.number, version=request.version, step=request.step_id)
    acting = _action_elements(proc, request, step, viewer_actions, people, card, today, attached)
    if acting:
        body += acting
    else:
        if request.is_open and step is not None:
            body.append(para(f"**Pendiente de:** {escape_line(pending_label(proc, request, people))}",
                             spacing="Medium", separator=True))
            if refreshed_for is not None:
                body.append(para("Usted no tiene acciones pendientes en este paso.", subtle=True, spacing="None"))
        line = _last_line(history_tail)
        if line is not None:
            body.append(line)
    body.append(actions(card.execute(Verb.REQUEST_HISTORY, "Ver historial")))
    return body


def step_card(proc: Procedure, request: Request, *, viewer_actions: Sequence[Action],
              people: Mapping[str, str] | None = None, can_act_user_ids: Iterable[str] = (),
              refreshed_for: str | None = None, notice: str | None = None,
              history_tail: Sequence[HistoryEntry] = (), today: date | None = None,
              attached: Mapping[str, AttachedFile] | None = None) -> dict[str, Any]:
    """THE card of a request at its current step, for one viewer.

    viewer_actions: what this viewer may do now (engine.open_actions); empty → a read-only card saying who
        must act and the last movement.
    people: person id → name of the current step's role, for the reassign choice (and "Pendiente de").
    can_act_user_ids: who may act now; becomes refresh.userIds (at most 60), so each of them gets their own
        card when they open it and everyone else keeps the read-only one.
    refreshed_for: the user id this copy was rendered for on refresh (None: the copy as posted).
    notice: plain Spanish text shown first in warning style (e.g. why an outdated click got this card).
    history_tail: the latest history entries (the read-only card shows the last one).
    today: the Lima date for date inputs' minimum (default: now in Lima).
    """
    today = today or lima_today()
    body = _body(proc, request, viewer_actions=viewer_actions, people=people or {}, notice_text=notice,
                 history_tail=history_tail, refreshed_for=refreshed_for, today=today, attached=attached or {})
    card = CardData(number=request.number, version=request.version, step=request.step_id)
    user_ids = list(dict.fromkeys(u for u in can_act_user_ids if u))[:MAX_REFRESH_USERS]
    refresh = RefreshDefinition(action=card.execute(Verb.REQUEST_REFRESH, "Actualizar", fallback=False),
                                user_ids=user_ids)
    return build(body, refresh=refresh, fallback_text=f"Solicitud N° {request.number}: "
                 f"{current_step_label(proc, request)}")


def request_status_card(proc: Procedure, request: Request, history_tail: Sequence[HistoryEntry] = (), *,
                        people: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`estado <n>`: where the request stands, read-only (who must act, last movement), with its history button."""
    body = _body(proc, request, viewer_actions=(), people=people or {}, notice_text=None,
                 history_tail=history_tail, refreshed_for=None, today=lima_today())
    return build(body, fallback_text=f"Solicitud N° {request.number}: {current_step_label(proc, request)}")


def shared_file_card(name: str, choices: Sequence[tuple[str, CardData, str]], file: AttachedFile) -> dict[str, Any]:
    """A file arrived in the chat: which pending step does it belong to? (label, card data, deliverable kind)."""
    body = heading("Archivo recibido", subtitle=escape_line(name, 150))
    body.append(para("¿A qué actividad corresponde? Se abrirá su tarjeta con el archivo; al completarla, "
                     "el archivo se copia a la carpeta de la solicitud en la biblioteca de documentos."))
    buttons = [execute_action(Verb.FILE_ATTACH, plain(label, 80),
                              {**card.data(), "kind": kind, "name": file.name, "url": file.url, "source": file.source})
               for label, card, kind in choices[:6]]
    body.append(actions(*buttons))
    return build(body, fallback_text=f"Archivo recibido: {plain(name, 100)}")
