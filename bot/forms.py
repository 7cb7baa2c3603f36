"""Reads what a person typed into a card (cards.verbs.Inputs) into the engine's intake and commands."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Mapping

from cards.verbs import (
    DISTRIBUTION_CHANNELS,
    OPTION_EMAIL,
    CardData,
    Inputs,
    split_choices,
)
from procedure.engine import Action, Command, DeliverableInput, Intake, MeetingProposal, Person
from procedure.model import Deliverable, Procedure, StepKind
from procedure.request import Classification, Request
from config.settings import LIMA


class FormError(Exception):
    """What the person typed cannot be read; `message` says which field, in Spanish."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def card_data(data: Mapping[str, Any]) -> CardData:
    try:
        return CardData.parse(data)
    except ValueError as exc:
        raise FormError("La tarjeta no corresponde a una solicitud válida. Escriba «mis pendientes».") from exc


def _date(data: Mapping[str, Any], input_id: str, label: str) -> date | None:
    raw = Inputs.get(data, input_id)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError as exc:
        raise FormError(f"{label}: la fecha no es válida (use aaaa-mm-dd).") from exc


def _bool(data: Mapping[str, Any], input_id: str) -> bool:
    return Inputs.get(data, input_id).lower() in ("true", "1", "sí", "si", "yes", "on")


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.replace(",", "\n").splitlines() if line.strip())


def parse_intake(data: Mapping[str, Any]) -> Intake:
    expected = Inputs.get(data, Inputs.EXPECTED_TYPE)
    return Intake(
        title=Inputs.get(data, Inputs.TITLE),
        area=Inputs.get(data, Inputs.AREA),
        due_date=_date(data, Inputs.DUE_DATE, "Fecha de entrega"),
        purpose=Inputs.get(data, Inputs.PURPOSE),
        inputs=Inputs.get(data, Inputs.INPUTS),
        links=_lines(Inputs.get(data, Inputs.LINKS)),
        involved_areas=tuple(split_choices(data.get(Inputs.INVOLVED_AREAS))),
        expected_type=expected if expected in ("A", "B") else None,
        piece_url=Inputs.get(data, Inputs.PIECE_URL),
        producer=Inputs.get(data, Inputs.PRODUCER),
    )


def intake_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """What the person typed, to fill the form again next to the errors."""
    fields = (Inputs.TITLE, Inputs.AREA, Inputs.DUE_DATE, Inputs.EXPECTED_TYPE, Inputs.PURPOSE, Inputs.INPUTS,
              Inputs.LINKS, Inputs.INVOLVED_AREAS, Inputs.PIECE_URL, Inputs.PRODUCER)
    return {f: value for f in fields if (value := Inputs.get(data, f))}


def _classification(data: Mapping[str, Any]) -> Classification:
    try:
        return Classification(
            piece_type=Inputs.get(data, Inputs.PIECE_TYPE),
            topic=Inputs.get(data, Inputs.TOPIC),
            investment_project=_bool(data, Inputs.INVESTMENT_PROJECT),
            project_name=Inputs.get(data, Inputs.PROJECT_NAME)[:200],
            audience=Inputs.get(data, Inputs.AUDIENCE) or "external",
            services=frozenset(split_choices(data.get(Inputs.SERVICES))),
            outside_producer=_bool(data, Inputs.OUTSIDE_PRODUCER),
        )
    except ValueError as exc:
        raise FormError("Complete la clasificación: tipo de pieza, tema, público y servicios.") from exc


def _meeting(data: Mapping[str, Any]) -> MeetingProposal | None:
    day = _date(data, Inputs.MEETING_DATE, "Fecha de la reunión")
    clock = Inputs.get(data, Inputs.MEETING_TIME)
    if day is None and not clock:
        return None
    if day is None or not clock:
        raise FormError("Indique la fecha y la hora de la reunión.")
    try:
        start = datetime.combine(day, time.fromisoformat(clock[:5]), tzinfo=LIMA)
        minutes = int(Inputs.get(data, Inputs.MEETING_MINUTES) or 60)
    except ValueError as exc:
        raise FormError("La hora de la reunión no es válida (use HH:MM).") from exc
    return MeetingProposal(start=start, minutes=max(15, min(minutes, 480)),
                           notes=Inputs.get(data, Inputs.MEETING_NOTES))


def complete_command(proc: Procedure, request: Request, data: Mapping[str, Any]) -> Command:
    step = proc[request.step_id]
    cd = card_data(data)
    deliverables = []
    for kind in step.deliverables:
        value = Inputs.get(data, Inputs.deliverable(kind))
        if kind is Deliverable.DISTRIBUTION_CHANNELS:
            chosen = [DISTRIBUTION_CHANNELS.get(c, "") for c in split_choices(data.get(Inputs.CHANNELS))]
            value = ", ".join(c for c in chosen if c) or value
        shared = data.get(Inputs.ATTACHED_PREFIX + kind.value)
        if isinstance(shared, Mapping) and value and value == str(shared.get("url", "")):
            # The file shared in the chat, left as offered: recorded as an upload to copy to the library.
            deliverables.append(DeliverableInput(kind, value, str(shared.get("name", ""))[:200], uploaded=True,
                                                 source=str(shared.get("source", ""))[:2000]))
        elif value:
            deliverables.append(DeliverableInput(kind, value))
    meeting = None
    if step.kind is StepKind.MEETING and cd.option != OPTION_EMAIL:
        meeting = _meeting(data)
    return Command(
        Action.COMPLETE, cd.version, cd.step,
        observation=Inputs.get(data, Inputs.COMPLETE_NOTE),
        deliverables=tuple(deliverables),
        classification=_classification(data) if step.id == proc.start else None,
        meeting=meeting,
        production_deadline=_date(data, Inputs.PRODUCTION_DEADLINE, "Plazo de producción"),
        contract_ref=Inputs.get(data, Inputs.CONTRACT_REF),
    )


REASON_INPUTS = {
    Action.HOLD: Inputs.HOLD_REASON,
    Action.RESUME: Inputs.RESUME_REASON,
    Action.CANCEL: Inputs.CANCEL_REASON,
    Action.REASSIGN: Inputs.REASSIGN_REASON,
}
OBSERVATION_INPUTS = {
    Action.APPROVE: Inputs.APPROVE_COMMENT,
    Action.REQUEST_CHANGES: Inputs.CHANGES_OBSERVATION,
    Action.OBSERVE: Inputs.OBSERVE_OBSERVATION,
}


def simple_command(action: Action, request: Request, data: Mapping[str, Any], *,
                   assignee: Person | None = None) -> Command:
    cd = card_data(data)
    return Command(
        action, cd.version, cd.step,
        observation=Inputs.get(data, OBSERVATION_INPUTS.get(action, "")),
        reason=Inputs.get(data, REASON_INPUTS.get(action, "")),
        assignee=assignee,
    )


def reassign_target(data: Mapping[str, Any]) -> str:
    return Inputs.get(data, Inputs.REASSIGN_PERSON)


def meeting_day(data: Mapping[str, Any]) -> date | None:
    return _date(data, Inputs.MEETING_DATE, "Fecha de la reunión")


def meeting_minutes(data: Mapping[str, Any]) -> int:
    raw = Inputs.get(data, Inputs.MEETING_MINUTES)
    return int(raw) if raw.isdigit() else 60


def edit_command(request: Request, data: Mapping[str, Any]) -> Command:
    """Only the fields the person changed; the title is never among them."""
    cd = card_data(data)
    changes: dict[str, Any] = {}
    due = _date(data, Inputs.EDIT_DUE_DATE, "Fecha de entrega")
    if due and due != request.due_date:
        changes["due_date"] = due
    for field, input_id in (("purpose", Inputs.EDIT_PURPOSE), ("inputs", Inputs.EDIT_INPUTS)):
        if input_id in data and Inputs.get(data, input_id) != getattr(request, field):
            changes[field] = Inputs.get(data, input_id)
    if Inputs.EDIT_LINKS in data:
        links = _lines(Inputs.get(data, Inputs.EDIT_LINKS))
        if links != tuple(link.url for link in request.links):
            changes["links"] = links
    if "title" in data:
        changes["title"] = Inputs.get(data, "title")
    return Command(Action.EDIT, cd.version, None, changes=changes)
