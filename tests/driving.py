"""Test helpers that play the procedure's people and drive a request through the pure engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from procedure.definition import PROCEDURE
from procedure.engine import (
    Action,
    Command,
    DeliverableInput,
    Intake,
    MeetingProposal,
    Person,
    apply,
    file_request,
    open_actions,
)
from procedure.model import Deliverable, StepKind
from procedure.request import Classification, Request
from procedure.roles import Role

LIMA = ZoneInfo("America/Lima")
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=LIMA)
AREAS = {"DE", "DSI", "SASA", "DPP", "DEP", "OCOIM"}
LEAD_TIMES = {"A": 25, "B": 12, "default": 12}

COORDINATOR = Person("coord", "Carla Quispe", frozenset({Role.COORDINATOR}), area="OCOIM")
PRESS = Person("press", "Pedro Huamán", frozenset({Role.PRESS}), area="OCOIM")
COMMS = Person("comms", "María Flores", frozenset({Role.COMMS}), area="OCOIM")
DESIGNER = Person("designer", "Diego Rojas", frozenset({Role.DESIGNER}), area="OCOIM")
HEAD = Person("head", "Julia Vargas", frozenset({Role.OCOIM_HEAD}), area="OCOIM")
DIRECTOR_DE = Person("dir-de", "Dora Díaz", frozenset({Role.DIRECTOR}), directs=frozenset({"DE"}), area="DE")
DIRECTOR_DSI = Person("dir-dsi", "Luis Paredes", frozenset({Role.DIRECTOR}), directs=frozenset({"DSI"}), area="DSI")
REQUESTER = Person("req", "Rosa Mendoza", frozenset({Role.REQUESTER}), area="DE")
OUTSIDER = Person("out", "Óscar Ruiz", frozenset({Role.REQUESTER}), area="SASA")
PEOPLE = [COORDINATOR, PRESS, COMMS, DESIGNER, HEAD, DIRECTOR_DE, DIRECTOR_DSI, REQUESTER, OUTSIDER]


def new_request(due: date = date(2027, 3, 1), area: str = "DE", number: str = "2026-0001") -> Request:
    intake = Intake(title="Video institucional 2027", area=area, due_date=due, purpose="Portal institucional")
    return file_request(PROCEDURE, intake, number, REQUESTER, NOW, AREAS, LEAD_TIMES).request


def classification(piece_type="A", *, app_pa=False, internal=False, services=("animation", "editing"),
                   producer=False) -> Classification:
    return Classification(
        piece_type=piece_type, topic="institutional", investment_project=app_pa,
        project_name="Línea 3 del Metro de Lima" if app_pa else "", audience="internal" if internal else "external",
        services=frozenset(services), outside_producer=producer,
    )


def full_command(request: Request, action: Action, c: Classification | None = None, **extra) -> Command:
    """A command with everything the current step needs (deliverables, meeting, dates)."""
    step = PROCEDURE[request.step_id]
    kw: dict = {}
    if action is Action.COMPLETE:
        kw["deliverables"] = tuple(
            DeliverableInput(k, f"https://proinversion.sharepoint.com/{request.number}/{k.value}.docx")
            for k in step.deliverables
            if k is not Deliverable.ARCHIVE_PATH  # the engine files it under Archivo/<año>/<mes>/<título>/
        )
        if step.kind is StepKind.MEETING:
            kw["meeting"] = MeetingProposal(NOW + timedelta(days=3))
        if step.id == "PRE-01":
            kw["classification"] = c or classification()
        if step.id == "PRO-01":
            kw["production_deadline"] = date(2027, 2, 15)
        if step.id == "POS-08":
            kw["deliverables"] = (DeliverableInput(Deliverable.DISTRIBUTION_CHANNELS, "Redes sociales, Intranet"),)
    if action is Action.REQUEST_CHANGES:
        kw["observation"] = "Acortar la introducción y usar la línea gráfica institucional."
    kw.update(extra)
    return Command(action, request.version, request.step_id, **kw)


def who_can(request: Request, action: Action) -> Person:
    for person in PEOPLE:
        if action in open_actions(PROCEDURE, request, person):
            return person
    raise AssertionError(f"nobody may {action.value} at {request.step_id}")


@dataclass
class Walk:
    request: Request
    visited: list[str] = field(default_factory=list)
    history: list = field(default_factory=list)
    effects: list = field(default_factory=list)


def walk(c: Classification, adjust_rounds: dict[str, int] | None = None, request: Request | None = None) -> Walk:
    """Drive a request to the end; each review asks for adjustments `adjust_rounds[review]` times first."""
    adjust_rounds = adjust_rounds or {}
    w = Walk(request or new_request())
    for _ in range(500):
        r = w.request
        if r.step_id == "END":
            return w
        step = PROCEDURE[r.step_id]
        if step.kind is StepKind.REVIEW:
            action = Action.REQUEST_CHANGES if r.rounds(step.id) < adjust_rounds.get(step.id, 0) else Action.APPROVE
        else:
            action = Action.COMPLETE
        actor = who_can(r, action)
        outcome = apply(PROCEDURE, r, full_command(r, action, c), actor, NOW, LEAD_TIMES)
        w.visited.append(r.step_id)
        w.history += outcome.history
        w.effects += outcome.effects
        w.request = outcome.request
    raise AssertionError("the walk did not finish")
