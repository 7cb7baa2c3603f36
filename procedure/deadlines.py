"""Step deadlines on Peru's calendar: when the current step is due, how it stands today, and delivery risk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from procedure.calendar import add_working_days, is_working_day, working_days_between
from procedure.model import END, Procedure, Step, StepKind
from procedure.request import PieceType, Request, Status

LIMA = ZoneInfo("America/Lima")
# A step with this many working days left (or fewer, but not on its last day) is "due soon".
DUE_SOON_DAYS = 1


class StepDays(Protocol):
    """What the deadline rules need from the configuration (config.deadlines.Deadlines)."""

    def days_for(self, step_id: str) -> int: ...


class StepState(str, Enum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"
    ON_HOLD = "on_hold"
    CLOSED = "closed"  # delivered or cancelled: no step runs


@dataclass(frozen=True)
class StepStatus:
    state: StepState
    deadline: date | None
    days_left: int = 0  # working days from today to the deadline (on_time, due_soon)
    days_overdue: int = 0  # working days past the deadline (overdue)

    @property
    def label(self) -> str:
        """How the tracking table and the cards say it, in Spanish."""
        if self.state is StepState.OVERDUE:
            unit = "día hábil" if self.days_overdue == 1 else "días hábiles"
            return f"Vencido ({self.days_overdue} {unit})"
        return STATE_LABELS[self.state]


STATE_LABELS = {
    StepState.ON_TIME: "En plazo",
    StepState.DUE_SOON: "Vence pronto",
    StepState.DUE_TODAY: "Vence hoy",
    StepState.OVERDUE: "Vencido",
    StepState.ON_HOLD: "En espera",
    StepState.CLOSED: "Cerrada",
}


def lima_date(moment: datetime) -> date:
    """The calendar day in Lima of an instant (a naive time is taken as Lima's already)."""
    return moment.date() if moment.tzinfo is None else moment.astimezone(LIMA).date()


def step_deadline(request: Request, deadlines: StepDays) -> date | None:
    """The working day the current step is due: its target days counted from the day it opened."""
    if request.step_id == END:
        return None
    return add_working_days(lima_date(request.step_opened_at), deadlines.days_for(request.step_id))


def status_of(request: Request, today: date, deadlines: StepDays) -> StepStatus:
    deadline = step_deadline(request, deadlines)
    if not request.is_open or deadline is None:
        return StepStatus(StepState.CLOSED, None)
    if request.status is Status.ON_HOLD:
        return StepStatus(StepState.ON_HOLD, deadline)
    if today == deadline:
        return StepStatus(StepState.DUE_TODAY, deadline)
    if today > deadline:
        # A weekend right after the deadline already counts as one day late: the last working day passed.
        return StepStatus(StepState.OVERDUE, deadline, days_overdue=max(1, working_days_between(deadline, today)))
    left = working_days_between(today, deadline)
    return StepStatus(StepState.DUE_SOON if left <= DUE_SOON_DAYS else StepState.ON_TIME, deadline, days_left=left)


def delivery_date(request: Request) -> date:
    """The date the piece is promised for: the production deadline once PRO-01 set it, else the requested one."""
    return request.production_deadline or request.due_date


def expected_path(proc: Procedure, request: Request) -> list[str]:
    """The steps still ahead after the current one, assuming every review gives conformity the first time.

    Routes follow the request's classification; before PRE-01 decides it, the requester's expected type
    is used, and otherwise the first route (type A, the longer path) as the cautious guess.
    """
    path: list[str] = []
    step = proc.by_id.get(request.step_id)
    seen: set[str] = set()
    while step is not None and step.id not in seen:
        seen.add(step.id)
        target = _next_step(step, request)
        if target == END or target not in proc:
            break
        step = proc[target]
        if step.kind is not StepKind.CONFORMITY:  # recorded with its review: never open on its own
            path.append(step.id)
    return path


def _next_step(step: Step, request: Request) -> str:
    if step.kind is StepKind.REVIEW:
        return step.conformity_step
    for route in step.routes:
        if route.when is None or _guard(request, route.when.field) == route.when.equals:
            return route.to
    return step.routes[0].to if step.routes else END


def _guard(request: Request, field: str) -> object:
    if request.classification is None and field == "piece_type" and request.expected_type is not None:
        return PieceType(request.expected_type).value
    return request.guard_value(field)


def remaining_working_days(proc: Procedure, request: Request, today: date, deadlines: StepDays) -> int:
    """An estimate of the working days the request still needs: what is left of the current step plus
    the target days of every step on its expected path."""
    if not request.is_open or request.step_id == END:
        return 0
    deadline = step_deadline(request, deadlines)
    current = max(0, working_days_between(today, deadline)) if deadline else 0
    return current + sum(deadlines.days_for(s) for s in expected_path(proc, request))


def at_risk(proc: Procedure, request: Request, today: date, deadlines: StepDays) -> bool:
    """True when the working days left before the delivery date are fewer than the request still needs."""
    if request.status is not Status.ACTIVE or request.step_id == END:
        return False
    available = working_days_between(today, delivery_date(request))
    return available < remaining_working_days(proc, request, today, deadlines)


def next_working_day(day: date) -> date:
    """The first working day after `day`."""
    return add_working_days(day, 1) if is_working_day(day) else add_working_days(day, 0)
