"""The reminder job: step reminders, the coordinator's morning digest, escalations, and snoozes.

Every reminder is a NOTIFY effect whose id is its key, added with `store.add_effects` (an id already
stored is skipped). That one rule gives the guarantees the issue asks for:

- never twice: two instances, or a restart, computing the same reminder produce the same id;
- never lost, and caught up once: a run only produces *today's* keys (Lima), so a bot that was down
  for days sends today's reminders when it comes back, not one per missed day; reminders sent once
  per step (approval overdue, escalation) are keyed by the day the step opened, so a missed one is
  sent on the first run that sees it;
- nothing on weekends or Peru's public holidays, and nothing before the morning hour.

Ids:
    reminder/{number}/{step}/before/{day}            the responsible, one working day before the deadline
    reminder/{number}/{step}/due/{day}               the responsible, on the deadline
    reminder/{number}/{step}/overdue/{day}           the responsible, every working morning while overdue
    reminder/{number}/{step}/approval_overdue/{opened}  the coordinator, once per visit of a director's review
    reminder/{number}/{step}/escalation/{opened}     the OCOIM head, once per visit, after N overdue days
    digest/{day}                                     the coordinator's card, one per working day
    reminder/{number}/{step}/snoozed/{day}           a snooze marker (see `snooze`); completed at once

({day} is today's date in Lima, {opened} the Lima date the step was opened, both yyyy-mm-dd.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from procedure import engine
from procedure.calendar import add_working_days, is_working_day
from procedure.deadlines import (
    LIMA,
    StepDays,
    StepState,
    StepStatus,
    at_risk,
    delivery_date,
    lima_date,
    next_working_day,
    status_of,
)
from procedure.model import Procedure, StepKind
from procedure.request import Effect, EffectKind, Request, Status
from procedure.roles import Role
from services.ports import Clock, Directory, RequestQuery, RequestStore

TEMPLATES = {
    "before": "reminder_before",
    "due": "reminder_due",
    "overdue": "reminder_overdue",
    "approval_overdue": "approval_overdue",
    "escalation": "escalation",
}
SNOOZE_TEMPLATE = "snooze_marker"
DIGEST_FAILED_IDS = 20  # the digest lists at most this many failed effect ids (the count is exact)
DIGEST_ITEMS = 20  # and at most this many requests per list (the totals are exact)


@dataclass(frozen=True)
class ReminderRun:
    """What one run computed for `day`, and which of those effects it was the first to store."""

    day: date
    effects: list[Effect] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def reminder_id(number: str, step_id: str, kind: str, day: date) -> str:
    return f"reminder/{number}/{step_id}/{kind}/{day.isoformat()}"


def digest_id(day: date) -> str:
    return f"digest/{day.isoformat()}"


def recipient(proc: Procedure, request: Request) -> dict | None:
    """Who is responsible for the current step, in the engine's notify format."""
    role = engine.responsible_role(proc, request)
    if role is None:
        return None
    to = {"person": request.assignees[role]} if role in request.assignees else {"role": role}
    if role == Role.DIRECTOR.value:
        to["area"] = request.area
    return to


def is_director_review(proc: Procedure, request: Request) -> bool:
    step = proc.by_id.get(request.step_id)
    return (step is not None and step.kind is StepKind.REVIEW
            and engine.responsible_role(proc, request) == Role.DIRECTOR.value)


class ReminderJob:
    def __init__(self, proc: Procedure, store: RequestStore, directory: Directory, clock: Clock,
                 deadlines: StepDays, *, escalate_after_days: int | None = None, morning_hour: int | None = None):
        self.proc = proc
        self.store = store
        self.directory = directory
        self.clock = clock
        self.deadlines = deadlines
        self.escalate_after_days = escalate_after_days or getattr(deadlines, "escalate_after_days", 3)
        self.morning_hour = morning_hour if morning_hour is not None else getattr(deadlines, "reminder_hour", 8)

    def today(self) -> date:
        return lima_date(self.clock.now())

    def is_reminder_time(self) -> bool:
        """Working day in Lima, at or after the morning hour."""
        now = self.clock.now()
        local = now.astimezone(LIMA) if now.tzinfo else now
        return is_working_day(local.date()) and local.hour >= self.morning_hour

    async def run_once(self) -> ReminderRun:
        """Store today's reminders and digest (those not stored yet); nothing outside working mornings."""
        today = self.today()
        if not self.is_reminder_time():
            return ReminderRun(today)
        # Brief requests: reminders never read deliverables or observations, and the store keeps them parsed.
        requests = await self.store.find(RequestQuery(open_only=True, brief=True, limit=100_000))
        # Today's snooze markers in one read rather than one per request.
        snoozed = await self.store.stored_effect_ids(
            reminder_id(r.number, r.step_id, "snoozed", today) for r in requests if r.status is Status.ACTIVE)
        effects: list[Effect] = []
        for request in requests:
            effects += await self.reminders_for(request, today, snoozed=snoozed)
        effects.append(await self.digest(requests, today))
        added = await self.store.add_effects(effects)
        return ReminderRun(today, effects, added)

    async def reminders_for(self, request: Request, today: date, *, snoozed: set[str] | None = None) -> list[Effect]:
        """The reminders about one request that are due today (before filtering the ones already stored).

        `snoozed`: today's snooze marker ids already read (by `run_once`); otherwise they are looked up."""
        if request.status is not Status.ACTIVE:
            return []
        status = status_of(request, today, self.deadlines)
        to = recipient(self.proc, request)
        if to is None:
            return []
        base = self._base_payload(request, status, today)
        step = request.step_id
        opened = lima_date(request.step_opened_at)
        effects: list[Effect] = []
        kind = {StepState.DUE_TODAY: "due", StepState.OVERDUE: "overdue"}.get(status.state)
        if status.state is StepState.DUE_SOON and status.days_left == 1:
            kind = "before"
        if kind and not (reminder_id(request.number, step, "snoozed", today) in snoozed if snoozed is not None
                         else await self.is_snoozed(request.number, step, today)):
            effects.append(self._effect(reminder_id(request.number, step, kind, today), request,
                                        {**base, "to": to, "template": TEMPLATES[kind]}))
        if status.state is StepState.OVERDUE:
            coordinator = {"role": Role.COORDINATOR.value}
            if is_director_review(self.proc, request):
                effects.append(self._effect(
                    reminder_id(request.number, step, "approval_overdue", opened), request,
                    {**base, "to": coordinator, "template": TEMPLATES["approval_overdue"],
                     "director": await self._director_name(request.area)}))
            if status.days_overdue >= self.escalate_after_days:
                effects.append(self._effect(
                    reminder_id(request.number, step, "escalation", opened), request,
                    {**base, "to": {"role": Role.OCOIM_HEAD.value}, "template": TEMPLATES["escalation"],
                     "responsible": to}))
        return effects

    async def digest(self, requests: list[Request], today: date) -> Effect:
        """The coordinator's morning card: what is late, what is due soon, what waits on directors, what is at
        risk, and the effects that could not be delivered."""
        overdue, due_soon, awaiting, risky = [], [], [], []
        for request in requests:
            if request.status is not Status.ACTIVE:
                continue
            status = status_of(request, today, self.deadlines)
            item = self._item(request, status)
            if status.state is StepState.OVERDUE:
                overdue.append(item)
            elif status.state in (StepState.DUE_TODAY, StepState.DUE_SOON):
                due_soon.append(item)
            if is_director_review(self.proc, request):
                awaiting.append({**item, "director": await self._director_name(request.area)})
            if at_risk(self.proc, request, today, self.deadlines):
                risky.append({**item, "delivery_date": delivery_date(request).isoformat()})
        overdue.sort(key=lambda i: -i["days_overdue"])
        failed = await self.store.failed_effects(limit=1000)
        # The card shows a few rows per list; the effect keeps the first DIGEST_ITEMS of each and the totals,
        # so it stays small whatever the number of requests (a SharePoint text column holds 63,999 characters).
        lists = {"overdue": overdue, "due_soon": due_soon, "awaiting_directors": awaiting, "at_risk": risky}
        payload = {
            "to": {"role": Role.COORDINATOR.value}, "template": "digest", "day": today.isoformat(),
            **{key: items[:DIGEST_ITEMS] for key, items in lists.items()},
            "totals": {key: len(items) for key, items in lists.items()},
            "failed_effects": {"count": len(failed), "ids": [r.id for r in failed[:DIGEST_FAILED_IDS]]},
        }
        # No single request: the effects table keeps request_number without a foreign key for this.
        return Effect(id=digest_id(today), kind=EffectKind.NOTIFY, request_number="", payload=payload)

    # ── Snooze ──────────────────────────────────────────────────────────────────────────────

    async def snooze(self, number: str, step_id: str, person_id: str, until_day: date | None = None) -> list[date]:
        """Mute the reminders about `step_id` of `number` from today through `until_day` (default: the next
        working day). Returns the working days muted.

        A marker effect per muted day records it (id reminder/{number}/{step}/snoozed/{day}); the marker is
        completed as soon as it is stored, so the dispatcher never delivers it (it also carries the person as
        its recipient, so a dispatcher in another process that claims it in between sends a harmless
        confirmation rather than failing). Only the responsible's own reminders are muted: the coordinator's
        approval-overdue message, the escalation and the digest still go out.
        """
        request = await self.store.get(number)
        if request.step_id != step_id or request.status is not Status.ACTIVE:
            raise engine.StaleVersion(f"La solicitud {number} ya no está en {step_id}.")
        person = await self.directory.person(person_id)
        if person is None or not (engine.may_act_on_step(self.proc, request, person)
                                  or Role.COORDINATOR in person.roles):
            raise engine.NotAllowed(f"Solo quien tiene a cargo {step_id} puede posponer sus recordatorios.")
        today = self.today()
        until_day = until_day or next_working_day(today)
        days = []
        day = today
        while day <= until_day:
            if is_working_day(day):
                days.append(day)
            day += timedelta(days=1)
        markers = [
            Effect(id=reminder_id(number, step_id, "snoozed", d), kind=EffectKind.NOTIFY, request_number=number,
                   payload={"to": {"person": person_id}, "template": SNOOZE_TEMPLATE, "step_id": step_id,
                            "until": until_day.isoformat()})
            for d in days
        ]
        for effect_id in await self.store.add_effects(markers):
            await self.store.complete_effect(effect_id, {"snoozed_by": person_id})
        return days

    async def is_snoozed(self, number: str, step_id: str, day: date) -> bool:
        return await self.store.effect(reminder_id(number, step_id, "snoozed", day)) is not None

    # ── Helpers ─────────────────────────────────────────────────────────────────────────────

    def _base_payload(self, request: Request, status: StepStatus, today: date) -> dict:
        return {
            "step_id": request.step_id, "step_name": self.proc[request.step_id].name, "title": request.title,
            "deadline": status.deadline.isoformat() if status.deadline else None,
            "days_overdue": status.days_overdue, "status": status.state.value, "status_label": status.label,
            "day": today.isoformat(), "snooze_until": add_working_days(today, 1).isoformat(),
        }

    def _item(self, request: Request, status: StepStatus) -> dict:
        return {
            "number": request.number, "title": request.title, "area": request.area,
            "step_id": request.step_id, "step_name": self.proc[request.step_id].name,
            "deadline": status.deadline.isoformat() if status.deadline else None,
            "status": status.state.value, "status_label": status.label,
            "days_left": status.days_left, "days_overdue": status.days_overdue,
            "responsible": recipient(self.proc, request),
        }

    @staticmethod
    def _effect(effect_id: str, request: Request, payload: dict) -> Effect:
        return Effect(id=effect_id, kind=EffectKind.NOTIFY, request_number=request.number, payload=payload)

    async def _director_name(self, area: str) -> str:
        director = await self.directory.director_of(area)
        return director.name if director else ""
