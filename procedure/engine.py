"""The pure engine: which actions a person may take on a request, and what applying one produces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from procedure.calendar import working_days_between
from procedure.model import END, Deliverable, OutputKind, Procedure, Step, StepKind
from procedure.request import (
    Classification,
    DeliverableRecord,
    Effect,
    EffectKind,
    HistoryEntry,
    Link,
    Observation,
    PieceType,
    Request,
    Status,
)
from procedure.roles import TEAM_MEMBERS, Role

MAX_TITLE = 200
MAX_TEXT = 4000


class Action(str, Enum):
    COMPLETE = "complete"  # do the step (with its deliverables or decision)
    APPROVE = "approve"  # "Dar conformidad": the review and its conformity
    REQUEST_CHANGES = "request_changes"  # "Solicitar ajustes"
    OBSERVE = "observe"  # a reviewer's observation, without deciding (DOMAIN.md res. 9)
    REASSIGN = "reassign"
    HOLD = "hold"
    RESUME = "resume"
    CANCEL = "cancel"
    EDIT = "edit"  # the requester or coordinator corrects the request's data (never its title)

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    Action.COMPLETE: "Completar",
    Action.APPROVE: "Dar conformidad",
    Action.REQUEST_CHANGES: "Solicitar ajustes",
    Action.OBSERVE: "Agregar observación",
    Action.REASSIGN: "Reasignar",
    Action.HOLD: "Poner en espera",
    Action.RESUME: "Reanudar",
    Action.CANCEL: "Cancelar solicitud",
    Action.EDIT: "Corregir datos",
}

COORDINATOR_ACTIONS = (Action.REASSIGN, Action.HOLD, Action.RESUME, Action.CANCEL)

# Deliverables that must be a link or an uploaded file; the others may be plain text.
LINK_DELIVERABLES = frozenset({
    Deliverable.SCRIPT, Deliverable.STORYBOARD, Deliverable.PRELIMINARY_VERSION,
    Deliverable.FIRST_VERSION, Deliverable.FINAL_VERSION, Deliverable.GRAPHIC_PIECES,
    Deliverable.SCHEDULE,
})
# The outputs a requester hears about as milestones.
MILESTONES = {
    "PRE-16": "Se dio conformidad al guion y storyboard.",
    "PRO-10": "La primera versión del video está lista para su revisión.",
    "POS-08": "La pieza audiovisual fue entregada.",
}
EDITABLE_FIELDS = frozenset({"due_date", "purpose", "inputs", "links", "involved_areas"})


@dataclass(frozen=True)
class Person:
    """Someone acting on a request, with what the directory says they are."""

    id: str
    name: str
    roles: frozenset[Role] = frozenset()
    directs: frozenset[str] = frozenset()  # areas whose director this person is
    area: str = ""
    email: str = ""

    def has(self, role: str | Role) -> bool:
        role = Role(role)
        if role in TEAM_MEMBERS:
            return bool(self.roles & TEAM_MEMBERS[role])
        return role in self.roles

    @property
    def is_ocoim(self) -> bool:
        from procedure.roles import OCOIM_ROLES

        return bool(self.roles & OCOIM_ROLES)


@dataclass(frozen=True)
class DeliverableInput:
    kind: Deliverable
    ref: str
    name: str = ""
    uploaded: bool = False
    source: str = ""  # where to download an uploaded file from (Teams' short-lived download link)


@dataclass(frozen=True)
class MeetingProposal:
    start: datetime
    minutes: int = 60
    notes: str = ""


@dataclass(frozen=True)
class Command:
    action: Action
    expected_version: int
    step_id: str | None = None  # the step the card was built for
    observation: str = ""
    deliverables: tuple[DeliverableInput, ...] = ()
    classification: Classification | None = None
    meeting: MeetingProposal | None = None
    assignee: Person | None = None
    reason: str = ""
    production_deadline: date | None = None
    contract_ref: str = ""
    channels: tuple[str, ...] = ()
    changes: dict = field(default_factory=dict)  # for EDIT


@dataclass(frozen=True)
class Outcome:
    request: Request
    history: list[HistoryEntry]
    effects: list[Effect]
    warnings: list[str] = field(default_factory=list)


class ActionRefused(Exception):
    """The action cannot be applied; `message` is Spanish and says why (and what to do)."""

    code = "refused"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class StaleVersion(ActionRefused):
    code = "stale"


class NotAllowed(ActionRefused):
    code = "forbidden"


class InvalidAction(ActionRefused):
    code = "invalid"


# ── Who may do what ─────────────────────────────────────────────────────────────────────────


def responsible_role(proc: Procedure, request: Request, step_id: str | None = None) -> str | None:
    step = proc.by_id.get(step_id or request.step_id)
    if step is None:
        return None
    c = request.classification
    if step.internal_audience_role and c is not None and c.audience.value == "internal":
        return step.internal_audience_role
    return step.roles[0]


def assignee_of(proc: Procedure, request: Request) -> str | None:
    """The person in charge of the current step, if the coordinator named one for its role."""
    role = responsible_role(proc, request)
    return request.assignees.get(role) if role else None


def may_act_on_step(proc: Procedure, request: Request, person: Person) -> bool:
    if request.status is not Status.ACTIVE or request.step_id not in proc:
        return False
    role = responsible_role(proc, request)
    if role == Role.DIRECTOR.value:
        return request.area in person.directs
    if role == Role.REQUESTER.value:  # the area's own step (7.4): whoever filed it, or someone of that area
        return person.id == request.requester_id or (bool(person.area) and person.area == request.area)
    if not person.has(role):
        return False
    # A team decision may be recorded by any member (res. 8); otherwise the person in charge, if named.
    named = request.assignees.get(role)
    return role in (r.value for r in TEAM_MEMBERS) or named is None or named == person.id


def may_observe(proc: Procedure, request: Request, person: Person) -> bool:
    step = proc.by_id.get(request.step_id)
    if request.status is not Status.ACTIVE or step is None or step.kind is not StepKind.REVIEW:
        return False
    if may_act_on_step(proc, request, person):
        return False
    return any(
        (role == Role.REQUESTER.value and (person.area == request.area or person.id == request.requester_id))
        for role in step.observers
    )


def open_actions(proc: Procedure, request: Request, person: Person) -> list[Action]:
    """The actions `person` may take on `request` now, in the order a card shows them."""
    actions: list[Action] = []
    step = proc.by_id.get(request.step_id)
    if step is not None and may_act_on_step(proc, request, person):
        if step.kind is StepKind.REVIEW:
            actions += [Action.APPROVE, Action.REQUEST_CHANGES]
        else:
            actions.append(Action.COMPLETE)
    if may_observe(proc, request, person):
        actions.append(Action.OBSERVE)
    if Role.COORDINATOR in person.roles and request.is_open:
        if request.status is Status.ACTIVE:
            actions += [Action.REASSIGN, Action.HOLD, Action.CANCEL]
        else:
            actions += [Action.RESUME, Action.CANCEL]
    if request.is_open and (Role.COORDINATOR in person.roles or person.id == request.requester_id):
        actions.append(Action.EDIT)
    return actions


# ── Filing a request (section 6) ────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Intake:
    title: str
    area: str
    due_date: date | None
    purpose: str = ""
    inputs: str = ""
    links: tuple[str, ...] = ()
    involved_areas: tuple[str, ...] = ()
    expected_type: PieceType | None = None
    piece_url: str = ""  # 7.4: the piece an outside producer made, sent for OCOIM's review
    producer: str = ""


class IntakeError(ActionRefused):
    """The request cannot be filed; `errors` maps each field to a Spanish message."""

    code = "invalid"

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


URL_RE = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)


def lead_time_warning(due: date, today: date, piece_type: PieceType | None, lead_times: dict[str, int]) -> str | None:
    """Section 7.3: a warning when the delivery date leaves fewer working days than the type needs."""
    piece_type = PieceType(piece_type) if piece_type else None
    needed = lead_times.get(piece_type.value if piece_type else "default", lead_times.get("default", 10))
    available = working_days_between(today, due)
    if available >= needed:
        return None
    kind = "un video animado (tipo A)" if piece_type is PieceType.A else (
        "un video con o sin grabación de tomas (tipo B)" if piece_type is PieceType.B else "una pieza audiovisual"
    )
    return (
        f"La fecha de entrega deja {available} días hábiles; para {kind} se recomiendan al menos {needed}. "
        "La solicitud se registra, pero OCOIM podría proponer otra fecha al definir los plazos (PRO-01)."
    )


def file_request(
    proc: Procedure, intake: Intake, number: str, requester: Person, now: datetime, known_areas: set[str],
    lead_times: dict[str, int], start: str | None = None,
) -> Outcome:
    """File a request at the procedure's start, or at another entry point (TER-01: a third party's piece)."""
    start = start or proc.start
    if start not in proc.starts:
        raise InvalidAction(f"{start} no es un punto de inicio del procedimiento.")
    third_party = start != proc.start
    errors: dict[str, str] = {}
    title = " ".join((intake.title or "").split())
    if not title:
        errors["title"] = "Indique el título de la solicitud."
    elif len(title) > MAX_TITLE:
        errors["title"] = f"El título no puede superar los {MAX_TITLE} caracteres."
    if intake.area not in known_areas:
        errors["area"] = "Elija el área usuaria que solicita la pieza."
    today = now.date()
    if intake.due_date is None:
        errors["due_date"] = "Indique la fecha de entrega prevista o tentativa."
    elif intake.due_date < today:
        errors["due_date"] = "La fecha de entrega no puede estar en el pasado."
    for f in ("purpose", "inputs"):
        if len(getattr(intake, f) or "") > MAX_TEXT:
            errors[f] = f"El texto no puede superar los {MAX_TEXT} caracteres."
    bad_links = [u for u in intake.links if not URL_RE.match(u.strip())]
    if bad_links:
        errors["links"] = f"Estos enlaces no son válidos (deben empezar con https://): {', '.join(bad_links)}"
    unknown = [a for a in intake.involved_areas if a not in known_areas]
    if unknown:
        errors["involved_areas"] = f"Áreas involucradas desconocidas: {', '.join(unknown)}"
    if third_party and not URL_RE.match((intake.piece_url or "").strip()):
        errors["piece_url"] = "Indique el enlace a la pieza audiovisual (https://…)."
    if errors:
        raise IntakeError(errors)

    request = Request(
        number=number, title=title, area=intake.area, due_date=intake.due_date,
        purpose=(intake.purpose or "").strip(), inputs=(intake.inputs or "").strip(),
        links=tuple(Link(url=u.strip()) for u in intake.links if u.strip()),
        involved_areas=tuple(dict.fromkeys(a for a in intake.involved_areas if a != intake.area)),
        expected_type=PieceType(intake.expected_type) if intake.expected_type else None, requester_id=requester.id, requester_name=requester.name,
        filed_at=now, step_id=start, step_opened_at=now, last_actor_name=requester.name, last_action_at=now,
        entry=start, producer=_clean(intake.producer, 200),
    )
    if third_party:
        piece = DeliverableRecord(kind=Deliverable.FINAL_VERSION, ref=intake.piece_url.strip(), name="Pieza remitida",
                                  step_id=start, by=requester.id, at=now)
        request = request.model_copy(update={"deliverables": (piece,)})
        summary = (f"{requester.name} remitió la pieza «{title}», elaborada por "
                   f"{request.producer or 'un proveedor del área'}, para la revisión de OCOIM (7.4).")
    else:
        summary = f"{requester.name} registró la solicitud «{title}»."
    warning = None if third_party else lead_time_warning(intake.due_date, today, intake.expected_type, lead_times)
    entry = _entry(request, 0, start, "file", summary, requester, now, detail={"warning": warning} if warning else {})
    # The requester sees the request (and any warning) in the reply to the form; the coordinator gets PRE-01.
    effects = _opening_effects(proc, request, 0, warning=warning)
    return Outcome(request, [entry], effects, [warning] if warning else [])


# ── Applying an action ──────────────────────────────────────────────────────────────────────


def apply(proc: Procedure, request: Request, command: Command, actor: Person, now: datetime,
          lead_times: dict[str, int] | None = None) -> Outcome:
    """Apply `command` by `actor`; raise ActionRefused (changing nothing) when it may not be applied."""
    if command.expected_version != request.version:
        raise StaleVersion(
            f"La solicitud {request.number} cambió desde que se generó esta tarjeta "
            f"(versión {command.expected_version}, ahora {request.version})."
        )
    if command.step_id and command.step_id != request.step_id and command.action in (
        Action.COMPLETE, Action.APPROVE, Action.REQUEST_CHANGES, Action.OBSERVE,
    ):
        raise StaleVersion(f"La solicitud {request.number} ya no está en {command.step_id}.")
    allowed = open_actions(proc, request, actor)
    if command.action not in allowed:
        raise NotAllowed(_why_not(proc, request, command.action, actor))
    handler = _HANDLERS[command.action]
    return handler(proc, request, command, actor, now, lead_times or {})


def _why_not(proc: Procedure, request: Request, action: Action, actor: Person) -> str:
    if request.status is Status.CANCELLED:
        return f"La solicitud {request.number} fue cancelada."
    if request.status is Status.DELIVERED:
        return f"La solicitud {request.number} ya fue entregada."
    if action in COORDINATOR_ACTIONS:
        return "Solo el Coordinador(a) de Marketing e Imagen Institucional puede hacerlo."
    if request.status is Status.ON_HOLD:
        return f"La solicitud {request.number} está en espera: {request.status_reason}"
    role = responsible_role(proc, request)
    if role == Role.DIRECTOR.value:
        return f"Solo el Director(a) del área {request.area} puede decidir en {request.step_id}."
    named = request.assignees.get(role or "")
    if named and named != actor.id and actor.has(role):
        return "Este paso está asignado a otra persona de su rol."
    return f"{request.step_id} corresponde a: {Role(role).label}." if role else "No hay acciones disponibles."


def _complete(proc, request: Request, cmd: Command, actor: Person, now: datetime, lead_times) -> Outcome:
    step = proc[request.step_id]
    updates: dict = {}
    detail: dict = {}
    warnings: list[str] = []
    round_no = _current_round(proc, request, step)
    records = _check_deliverables(step, cmd, actor, now, round_no, request)
    if step.id == proc.start:
        if cmd.classification is None:
            raise InvalidAction("Para completar PRE-01 indique la clasificación de la pieza (tipo, tema, "
                                "APP/PA, público, servicios y si requiere productora).")
        _check_classification(cmd.classification)
        updates["classification"] = cmd.classification
        detail["classification"] = cmd.classification.model_dump(mode="json")
        if lead_times:
            w = lead_time_warning(request.due_date, now.date(), cmd.classification.piece_type, lead_times)
            if w:
                warnings.append(w)
                detail["warning"] = w
    if step.id == "PRO-01":
        if cmd.production_deadline is None:
            raise InvalidAction("Indique el plazo de producción definido (fecha).")
        if cmd.production_deadline < now.date():
            raise InvalidAction("El plazo de producción no puede estar en el pasado.")
        updates["production_deadline"] = cmd.production_deadline
        detail["production_deadline"] = cmd.production_deadline.isoformat()
    if step.id == "PRE-17" and cmd.contract_ref.strip():
        updates["contract_ref"] = cmd.contract_ref.strip()[:200]
        detail["contract_ref"] = updates["contract_ref"]
    if step.id == "POS-07":
        path = next((r.ref for r in records if r.kind is Deliverable.ARCHIVE_PATH), "")
        updates["archive_path"] = path
    if step.id == "POS-08":
        updates["distribution_channels"] = tuple(
            c for r in records if r.kind is Deliverable.DISTRIBUTION_CHANNELS for c in r.ref.split(", ")
        )
    if step.kind is StepKind.MEETING and step.output.label.endswith("(agenda)") and cmd.meeting is None:
        raise InvalidAction(f"{step.id} convoca a una reunión: indique fecha y hora de la reunión de revisión.")
    if cmd.meeting is not None:
        if step.kind is not StepKind.MEETING:
            raise InvalidAction(f"{step.id} no convoca reuniones.")
        if cmd.meeting.start < now:
            raise InvalidAction("La reunión no puede ser en el pasado.")
        detail["meeting"] = {"start": cmd.meeting.start.isoformat(), "minutes": cmd.meeting.minutes}
    if records:
        detail["deliverables"] = [{"kind": r.kind.value, "ref": r.ref, "name": r.name} for r in records]
    if cmd.observation.strip():
        detail["note"] = _clean(cmd.observation)

    staged = request.model_copy(update={**updates, "deliverables": request.deliverables + tuple(records)})
    next_step = _route(proc, step, staged)
    summary = f"{actor.name} completó {step.id} «{step.name}»."
    entries = [_entry(request, 0, step.id, "complete", summary, actor, now, round_no if round_no > 1 else None,
                      detail=detail)]
    effects = _output_effects(proc, staged, step, 0, cmd, records)
    effects += [_effect(staged, 0, EffectKind.UPLOAD, {"deliverable": r.model_dump(mode="json")})
                for r in records if r.uploaded]
    if step.id == "POS-07":
        effects.append(_effect(staged, 0, EffectKind.ARCHIVE, {"path": staged.archive_path}))
    return _advance(proc, staged, next_step, actor, now, entries, effects, warnings)


def _review(proc, request: Request, cmd: Command, actor: Person, now: datetime, lead_times) -> Outcome:
    step = proc[request.step_id]
    round_no = request.rounds(step.id) + 1
    rounds = {**request.review_rounds, step.id: round_no}
    text = _clean(cmd.observation)
    if cmd.action is Action.REQUEST_CHANGES:
        if not text:
            raise InvalidAction("Para solicitar ajustes escriba la observación: qué debe ajustarse.")
        obs = Observation(step_id=step.id, round=round_no, by=actor.id, by_name=actor.name, text=text, at=now)
        staged = request.model_copy(update={"review_rounds": rounds, "observations": request.observations + (obs,)})
        entries = [_entry(request, 0, step.id, "request_changes",
                          f"{actor.name} solicitó ajustes en {step.id} (ronda {round_no}).", actor, now,
                          round_no, observation=text)]
        effects = _output_effects(proc, staged, step, 0, cmd, (), verdict="changes")
        return _advance(proc, staged, step.adjust_step, actor, now, entries, effects)

    conformity = proc[step.conformity_step]
    observations = request.observations
    if text:
        observations += (Observation(step_id=step.id, round=round_no, by=actor.id, by_name=actor.name,
                                     text=text, at=now, decisive=False),)
    staged = request.model_copy(update={"review_rounds": rounds, "observations": observations})
    entries = [
        _entry(request, 0, step.id, "review_approved",
               f"{actor.name} revisó en {step.id}: es conforme (ronda {round_no}).", actor, now, round_no,
               observation=text),
        _entry(request, 1, conformity.id, "conformity",
               f"{actor.name} dio conformidad: {conformity.id} «{conformity.name}».", actor, now, round_no),
    ]
    effects = _output_effects(proc, staged, conformity, 0, cmd, ())
    return _advance(proc, staged, _route(proc, conformity, staged), actor, now, entries, effects)


def _observe(proc, request: Request, cmd: Command, actor: Person, now: datetime, lead_times) -> Outcome:
    text = _clean(cmd.observation)
    if not text:
        raise InvalidAction("Escriba la observación.")
    round_no = request.rounds(request.step_id) + 1
    obs = Observation(step_id=request.step_id, round=round_no, by=actor.id, by_name=actor.name, text=text,
                      at=now, decisive=False)
    staged = _bump(request.model_copy(update={"observations": request.observations + (obs,)}), actor, now)
    entry = _entry(staged, 0, request.step_id, "observe", f"{actor.name} agregó una observación en "
                   f"{request.step_id}.", actor, now, round_no, observation=text)
    director = _effect(staged, 0, EffectKind.NOTIFY, {"to": {"role": Role.DIRECTOR.value, "area": request.area},
                                                      "template": "observation", "text": text})
    return Outcome(staged, [entry], [director])


def _reassign(proc, request: Request, cmd: Command, actor: Person, now: datetime, lead_times) -> Outcome:
    target = cmd.assignee
    role = responsible_role(proc, request)
    if target is None:
        raise InvalidAction("Elija a la persona a quien reasignar el paso.")
    if role in (Role.DIRECTOR.value, Role.OCOIM_TEAM.value):
        raise InvalidAction(f"{request.step_id} lo decide {Role(role).label}: no se reasigna a una persona.")
    if not target.has(role):
        raise InvalidAction(f"{target.name} no tiene el rol {Role(role).label}.")
    staged = _bump(request.model_copy(update={"assignees": {**request.assignees, role: target.id}}), actor, now)
    entry = _entry(staged, 0, request.step_id, "reassign",
                   f"{actor.name} reasignó {request.step_id} a {target.name}.", actor, now,
                   observation=_clean(cmd.reason), detail={"to": target.id, "role": role})
    return Outcome(staged, [entry], [_effect(staged, 0, EffectKind.NOTIFY,
                                             {"to": {"person": target.id}, "template": "step_opened",
                                              "step_id": request.step_id})])


def _status_change(status: Status, action: str, verb: str):
    def handler(proc, request: Request, cmd: Command, actor: Person, now: datetime, lead_times) -> Outcome:
        reason = _clean(cmd.reason)
        if status is not Status.ACTIVE and not reason:
            raise InvalidAction("Indique el motivo.")
        staged = _bump(request.model_copy(update={"status": status, "status_reason": reason}), actor, now)
        entry = _entry(staged, 0, request.step_id, action, f"{actor.name} {verb} la solicitud.", actor, now,
                       observation=reason)
        effects = [_effect(staged, 0, EffectKind.NOTIFY, {"to": {"person": request.requester_id},
                                                          "template": action, "reason": reason})]
        if status is Status.ACTIVE:
            effects += _opening_effects(proc, staged, 1)
        return Outcome(staged, [entry], effects)

    return handler


def _edit(proc, request: Request, cmd: Command, actor: Person, now: datetime, lead_times) -> Outcome:
    changes = dict(cmd.changes)
    if "title" in changes and changes["title"] != request.title:
        raise InvalidAction("El título de la solicitud no puede cambiar: debe mantenerse durante toda la atención "
                            "del servicio (sección 6 del procedimiento). Si es otra pieza, registre una nueva "
                            "solicitud.")
    changes.pop("title", None)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidAction(f"No se pueden corregir estos datos: {', '.join(sorted(unknown))}.")
    if "due_date" in changes and changes["due_date"] < now.date():
        raise InvalidAction("La fecha de entrega no puede estar en el pasado.")
    if "links" in changes:
        bad = [u for u in changes["links"] if not URL_RE.match(u)]
        if bad:
            raise InvalidAction(f"Estos enlaces no son válidos: {', '.join(bad)}")
        changes["links"] = tuple(Link(url=u) for u in changes["links"])
    if not changes:
        raise InvalidAction("No hay cambios que guardar.")
    staged = _bump(request.model_copy(update=changes), actor, now)
    entry = _entry(staged, 0, request.step_id, "edit", f"{actor.name} corrigió: {', '.join(sorted(changes))}.",
                   actor, now, detail={k: str(v) for k, v in changes.items()})
    return Outcome(staged, [entry], [])


_HANDLERS = {
    Action.COMPLETE: _complete,
    Action.APPROVE: _review,
    Action.REQUEST_CHANGES: _review,
    Action.OBSERVE: _observe,
    Action.REASSIGN: _reassign,
    Action.HOLD: _status_change(Status.ON_HOLD, "hold", "puso en espera"),
    Action.RESUME: _status_change(Status.ACTIVE, "resume", "reanudó"),
    Action.CANCEL: _status_change(Status.CANCELLED, "cancel", "canceló"),
    Action.EDIT: _edit,
}


# ── Helpers ─────────────────────────────────────────────────────────────────────────────────


def _route(proc: Procedure, step: Step, request: Request) -> str:
    for route in step.routes:
        if route.when is None or request.guard_value(route.when.field) == route.when.equals:
            return route.to
    raise InvalidAction(f"{step.id}: falta el dato que decide el siguiente paso.")


def _advance(proc, staged: Request, next_step: str, actor: Person, now: datetime, entries, effects,
             warnings=None) -> Outcome:
    done = next_step == END
    staged = _bump(staged.model_copy(update={
        "step_id": next_step, "step_opened_at": now,
        "status": Status.DELIVERED if done else staged.status,
        "delivered_at": now if done else staged.delivered_at,
    }), actor, now)
    entries = [e.model_copy(update={"version": staged.version}) for e in entries]
    effects = [e.model_copy(update={"id": f"{staged.number}/v{staged.version}/{i}-{e.kind.value}"})
               for i, e in enumerate(effects)]
    if not done:
        opening = _opening_effects(proc, staged, len(effects))
        effects += opening
    return Outcome(staged, entries, effects, list(warnings or []))


def _bump(request: Request, actor: Person, now: datetime) -> Request:
    return request.model_copy(update={"version": request.version + 1, "last_actor_name": actor.name,
                                      "last_action_at": now})


def _current_round(proc: Procedure, request: Request, step: Step) -> int:
    """An adjust step's round is the round of the review that sent it back."""
    for review in proc.reviews:
        if review.adjust_step == step.id:
            return request.rounds(review.id)
    return 1


def _check_deliverables(step: Step, cmd: Command, actor: Person, now: datetime, round_no: int,
                        request: Request) -> list[DeliverableRecord]:
    given = [d for d in cmd.deliverables if d.kind in step.deliverables and d.ref.strip()]
    for d in given:
        if d.kind in LINK_DELIVERABLES and not d.uploaded and not URL_RE.match(d.ref.strip()):
            raise InvalidAction(f"{d.kind.label}: indique un enlace válido (https://…) o adjunte el archivo.")
    if step.id == "POS-07" and not any(d.kind is Deliverable.ARCHIVE_PATH for d in given):
        given.append(DeliverableInput(Deliverable.ARCHIVE_PATH, archive_path_for(request, now.date())))
    kinds = {d.kind for d in given}
    missing = [k for k in step.deliverables if k not in kinds]
    if step.deliverables and (
        (step.deliverable_rule == "all" and missing) or (step.deliverable_rule == "any" and not kinds)
    ):
        joiner = " y " if step.deliverable_rule == "all" else " o "
        names = joiner.join(k.label for k in (missing if step.deliverable_rule == "all" else step.deliverables))
        raise InvalidAction(f"Para completar {step.id} adjunte o enlace: {names}.")
    return [
        DeliverableRecord(kind=d.kind, ref=_clean(d.ref, 2000), name=_clean(d.name, 200), uploaded=d.uploaded,
                          source=_clean(d.source, 2000), step_id=step.id, round=round_no, by=actor.id, at=now)
        for d in given
    ]


def archive_path_for(request: Request, day: date) -> str:
    """Archivo/<año>/<mes>/<título o proyecto>/ (DOMAIN.md res. 11), dated when it is archived."""
    name = (request.classification.project_name if request.classification and request.classification.project_name
            else request.title)
    safe = re.sub(r'[\\/:*?"<>|#%]+', " ", name).strip()[:80] or request.number
    return f"Archivo/{day.year}/{day.month:02d}/{safe}/"


def _check_classification(c: Classification) -> None:
    if not c.services:
        raise InvalidAction("Indique al menos un servicio: animación, grabación o edición.")
    if c.investment_project and not c.project_name.strip():
        raise InvalidAction("Indique el proyecto de APP o PA al que se refiere la pieza.")


def _clean(text: str, limit: int = MAX_TEXT) -> str:
    return (text or "").strip()[:limit]


def _entry(request: Request, seq: int, step_id: str, action: str, summary: str, actor: Person, now: datetime,
           round_no: int | None = None, observation: str = "", detail: dict | None = None) -> HistoryEntry:
    return HistoryEntry(request_number=request.number, version=request.version, seq=seq, step_id=step_id,
                        action=action, summary=summary, actor_id=actor.id, actor_name=actor.name, at=now,
                        round=round_no, observation=observation, detail=detail or {})


def _effect(request: Request, index: int, kind: EffectKind, payload: dict) -> Effect:
    return Effect(id=f"{request.number}/v{request.version}/{index}-{kind.value}", kind=kind,
                  request_number=request.number, payload=payload)


def _opening_effects(proc: Procedure, request: Request, start: int, warning: str | None = None) -> list[Effect]:
    """When a step opens, the person (or role) responsible gets its card."""
    role = responsible_role(proc, request)
    if role is None:
        return []
    to = {"person": request.assignees[role]} if role in request.assignees else {"role": role}
    if role == Role.REQUESTER.value:
        to = {"person": request.requester_id}
    if role == Role.DIRECTOR.value:
        to["area"] = request.area
    payload = {"to": to, "template": "step_opened", "step_id": request.step_id}
    if warning:
        payload["warning"] = warning
    return [_effect(request, start, EffectKind.NOTIFY, payload)]


def _output_effects(proc, request: Request, step: Step, start: int, cmd: Command, records, verdict=None) -> list[Effect]:
    """The step's "Salidas/Producto" sent to its "Usuario/Cliente": an email, or a meeting (res. 14)."""
    base = {"step_id": step.id, "recipients": list(step.output.to), "output": step.output.label}
    if verdict:
        base["verdict"] = verdict
    if records:
        base["deliverables"] = [{"kind": r.kind.value, "ref": r.ref, "name": r.name} for r in records]
    if cmd.meeting is not None:
        meeting = {"start": cmd.meeting.start.isoformat(), "minutes": cmd.meeting.minutes,
                   "notes": _clean(cmd.meeting.notes)}
        effects = [_effect(request, start, EffectKind.MEETING, {**base, **meeting})]
    elif step.output.kind in (OutputKind.EMAIL, OutputKind.MEETING, OutputKind.DISTRIBUTION) or verdict:
        effects = [_effect(request, start, EffectKind.EMAIL, base)]
    else:
        effects = []
    if step.id in MILESTONES and not verdict:
        effects.append(_milestone(request, start + len(effects), step.id))
    return effects


def _milestone(request: Request, index: int, step_id: str) -> Effect:
    return _effect(request, index, EffectKind.NOTIFY, {"to": {"person": request.requester_id},
                                                       "template": "milestone", "step_id": step_id,
                                                       "text": MILESTONES[step_id]})
