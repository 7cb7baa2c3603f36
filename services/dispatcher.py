"""Delivers the effects transitions leave behind: notifications, emails, meetings, uploads, archives."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta
from typing import Callable, Sequence

from ops import telemetry
from ops.logging import log_context
from procedure.engine import Person
from procedure.model import Deliverable, Procedure
from procedure.request import Effect, EffectKind, HistoryEntry, Request, Status
from procedure.roles import Audience, Role, TEAM_MEMBERS
from services import outputs
from services.ports import (
    Calendar,
    Clock,
    Directory,
    EffectRecord,
    FileStore,
    Mailer,
    MeetingRequest,
    Notifier,
    RequestStore,
    Unreachable,
)

log = logging.getLogger(__name__)

# The email that asks a director for conformity when a step of theirs opens (PRE-14, PRO-11, POS-04).
APPROVAL_TEMPLATE = "approval"
# Builds the Outlook card such an email carries (None: plain HTML email).
ApprovalCard = Callable[[Request, Person, Sequence[HistoryEntry]], dict]


class PermanentFailure(Exception):
    """Retrying cannot help (e.g. nobody to send to); the effect is kept as failed, with this reason."""


class EffectDispatcher:
    def __init__(self, proc: Procedure, store: RequestStore, directory: Directory, clock: Clock, *,
                 notifier: Notifier, mailer: Mailer, calendar: Calendar, files: FileStore,
                 max_attempts: int = 6, base_delay: float = 2.0, max_delay: float = 600.0, lease_seconds: int = 60,
                 teams_link: str = "", rng: random.Random | None = None,
                 approval_card: ApprovalCard | None = None):
        self.proc = proc
        self.store = store
        self.directory = directory
        self.clock = clock
        self.notifier = notifier
        self.mailer = mailer
        self.calendar = calendar
        self.files = files
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.teams_link = teams_link
        self.approval_card = approval_card
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._handlers = {
            EffectKind.NOTIFY: self._notify,
            EffectKind.EMAIL: self._email,
            EffectKind.MEETING: self._meeting,
            EffectKind.UPLOAD: self._upload,
            EffectKind.ARCHIVE: self._archive,
        }

    def wake(self) -> None:
        """Deliver now rather than at the next tick (called after each transition)."""
        self._wake.set()

    async def run_once(self, limit: int = 50) -> int:
        """Deliver what is due; returns how many effects were delivered."""
        delivered = 0
        now = self.clock.now()
        for record in await self.store.due_effects(now, limit):
            if not await self.store.claim_effect(record.id, now, self.lease_seconds):
                continue  # another worker has it
            if await self._deliver(record):
                delivered += 1
        return delivered

    async def run_forever(self, interval: float = 5.0) -> None:
        while True:
            try:
                while await self.run_once():
                    # A backlog (thousands of reminders) is delivered 50 at a time, serving HTTP in between.
                    await asyncio.sleep(0)
            except Exception:  # a broken store must not kill the loop; it is logged and retried
                log.exception("effect dispatch round failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass

    async def _deliver(self, record: EffectRecord) -> bool:
        effect = record.effect
        kind = getattr(effect.kind, "value", str(effect.kind))
        step_id = effect.payload.get("step_id")
        # Each line logged while delivering names the effect and its request, whichever instance delivers it.
        with log_context(correlation_id=effect.id, effect_id=effect.id, effect_kind=kind,
                         request_number=effect.request_number, step_id=step_id), \
                telemetry.span("effect.deliver", **{"claqueta.effect_id": effect.id, "claqueta.effect_kind": kind,
                                                    "claqueta.request_number": effect.request_number,
                                                    "claqueta.attempt": record.attempts + 1}):
            return await self._deliver_effect(record, kind)

    async def _deliver_effect(self, record: EffectRecord, kind: str) -> bool:
        effect = record.effect
        try:
            result = await self._handlers[effect.kind](effect)
        except PermanentFailure as exc:
            telemetry.count_effect(kind, "failed")
            await self.store.fail_effect(effect.id, str(exc), None)
            log.warning("effect %s failed permanently: %s", effect.id, exc)
            return False
        except Exception as exc:  # any adapter failure is retried with backoff, then kept visible
            attempts = record.attempts + 1
            error = f"{type(exc).__name__}: {exc}"[:500]
            retry_at = None if attempts >= self.max_attempts else self.clock.now() + self._backoff(attempts)
            telemetry.count_effect(kind, "retry" if retry_at else "failed")
            await self.store.fail_effect(effect.id, error, retry_at)
            log.warning("effect %s attempt %d failed: %s", effect.id, attempts, error)
            return False
        await self.store.complete_effect(effect.id, result or {})
        telemetry.count_effect(kind, "delivered")
        return True

    def _backoff(self, attempts: int) -> timedelta:
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempts - 1)))
        return timedelta(seconds=self.rng.uniform(ceiling / 2, ceiling))

    # ── Handlers ────────────────────────────────────────────────────────────────────────────

    async def _notify(self, effect: Effect) -> dict:
        to = effect.payload.get("to", {})
        if "person" in to:
            try:
                return await self.notifier.notify(to["person"], {**effect.payload, "number": effect.request_number,
                                                                 "effect_id": effect.id})
            except Unreachable:
                return await self._report_unreachable(effect, to["person"])
        # A role: one child effect per person, so a retry never notifies someone twice.
        people = await self._people_for(to)
        if not people:
            raise PermanentFailure(f"Nadie tiene el rol {to.get('role')} para recibir este aviso.")
        children = [
            Effect(id=f"{effect.id}/{pid}", kind=EffectKind.NOTIFY, request_number=effect.request_number,
                   payload={**effect.payload, "to": {"person": pid}})
            for pid in people
        ]
        if to.get("role") == Role.DIRECTOR.value and effect.payload.get("template") == "step_opened":
            # Added with the Teams notices, under an id derived from this effect: a retry never emails twice.
            children.append(Effect(id=f"{effect.id}/correo-aprobacion", kind=EffectKind.EMAIL,
                                   request_number=effect.request_number,
                                   payload={"template": APPROVAL_TEMPLATE, "step_id": effect.payload.get("step_id"),
                                            "recipients": [Role.DIRECTOR.value]}))
        await self.store.add_effects(children)
        self.wake()
        return {"fanned_out": people}

    async def _report_unreachable(self, effect: Effect, person_id: str) -> dict:
        coordinators = [p.id for p in await self.directory.people_with_role(Role.COORDINATOR.value)]
        if person_id in coordinators or effect.payload.get("template") == "unreachable":
            raise Unreachable(f"El bot aún no puede escribir a {person_id}.")
        person = await self.directory.person(person_id)
        report = [
            Effect(id=f"{effect.id}/unreachable/{cid}", kind=EffectKind.NOTIFY,
                   request_number=effect.request_number,
                   payload={"to": {"person": cid}, "template": "unreachable", "person_id": person_id,
                            "person_name": person.name if person else person_id,
                            "original": effect.payload.get("template"), "step_id": effect.payload.get("step_id")})
            for cid in coordinators
        ]
        await self.store.add_effects(report)
        self.wake()
        return {"unreachable": person_id, "reported_to": coordinators}

    async def _email(self, effect: Effect) -> dict:
        request = await self.store.get(effect.request_number)
        if effect.payload.get("template") == APPROVAL_TEMPLATE:
            return await self._approval_email(request, effect)
        recipients = await self._emails_for(request, effect.payload.get("recipients", []))
        if not recipients:
            raise PermanentFailure("Ningún destinatario tiene correo registrado.")
        email = outputs.email_for(self.proc, request, effect, recipients, self.teams_link)
        return await self.mailer.send(email)

    async def _approval_email(self, request: Request, effect: Effect) -> dict:
        if request.step_id != effect.payload.get("step_id") or request.status is not Status.ACTIVE:
            # Decided (or put on hold) before the email went out; resuming opens the step again, with its email.
            return {"skipped": "la solicitud ya avanzó"}
        director = await self.directory.director_of(request.area)
        if director is None or not director.email:
            raise PermanentFailure(f"El área {request.area} no tiene director(a) con correo registrado.")
        card = None
        if self.approval_card is not None:
            card = self.approval_card(request, director, (await self.store.history(request.number))[-3:])
        email = outputs.approval_email(self.proc, request, effect, [director.email], self.teams_link, card)
        return await self.mailer.send(email)

    async def _meeting(self, effect: Effect) -> dict:
        request = await self.store.get(effect.request_number)
        attendees = await self._emails_for(request, effect.payload.get("recipients", []))
        meeting = MeetingRequest(
            subject=outputs.subject(request, effect.payload["step_id"], self.proc),
            start=datetime.fromisoformat(effect.payload["start"]),
            minutes=int(effect.payload.get("minutes", 60)),
            attendees=tuple(attendees),
            body_html=outputs.meeting_body(self.proc, request, effect),
            transaction_id=effect.id,
        )
        return await self.calendar.create_meeting(meeting)

    async def _upload(self, effect: Effect) -> dict:
        deliverable = effect.payload["deliverable"]
        name = deliverable.get("name") or f"{deliverable['kind']}"
        return await self.files.copy_from_url(f"Solicitudes/{effect.request_number}", name,
                                              deliverable.get("source") or deliverable["ref"])

    async def _archive(self, effect: Effect) -> dict:
        request = await self.store.get(effect.request_number)
        refs = [r.ref for r in request.deliverables
                if r.kind in (Deliverable.FINAL_VERSION, Deliverable.GRAPHIC_PIECES, Deliverable.SCRIPT,
                              Deliverable.STORYBOARD)]
        return await self.files.archive(refs, effect.payload["path"])

    # ── Recipients ──────────────────────────────────────────────────────────────────────────

    async def _people_for(self, to: dict) -> list[str]:
        role = to.get("role")
        if role == Role.DIRECTOR.value:
            director = await self.directory.director_of(to.get("area", ""))
            return [director.id] if director else []
        roles = [r.value for r in TEAM_MEMBERS.get(Role(role), {Role(role)})] if role else []
        ids: list[str] = []
        for r in sorted(roles):
            ids += [p.id for p in await self.directory.people_with_role(r)]
        return list(dict.fromkeys(ids))

    async def _emails_for(self, request: Request, recipients: list[str]) -> list[str]:
        people = []
        for name in recipients:
            if name == Audience.REQUESTING_AREA.value:
                people.append(await self.directory.person(request.requester_id))
                people.append(await self.directory.director_of(request.area))
            elif name == Audience.INVOLVED_AREAS.value:
                people += [await self.directory.director_of(a) for a in request.involved_areas]
            elif name == Role.DIRECTOR.value:
                people.append(await self.directory.director_of(request.area))
            else:
                for pid in await self._people_for({"role": name}):
                    people.append(await self.directory.person(pid))
        return list(dict.fromkeys(p.email for p in people if p is not None and p.email))
