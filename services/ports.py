"""The ports the use cases talk through; `local/` and `graph/` implement them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple, Protocol, runtime_checkable

from procedure.engine import Person
from procedure.request import Effect, HistoryEntry, Request, Status


class ConcurrencyConflict(Exception):
    """The request changed since it was read: reload and decide again, never overwrite."""


class NotFound(Exception):
    pass


class HistoryMark(NamedTuple):
    """One history entry reduced to what the office's indicators need (`at` as stored, ISO 8601)."""

    version: int
    seq: int
    step_id: str
    action: str
    at: str
    round: int | None


def marks_of(history: Iterable[HistoryEntry]) -> list[HistoryMark]:
    return [HistoryMark(h.version, h.seq, h.step_id, h.action, h.at.isoformat(), h.round) for h in history]


@dataclass(frozen=True)
class EffectRecord:
    """An effect as stored: its delivery state travels with it."""

    effect: Effect
    status: str = "pending"  # pending | done | failed
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    result: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.effect.id


@dataclass(frozen=True)
class RequestQuery:
    """Filters a list of requests; each maps to an indexed column in every store."""

    open_only: bool = False
    area: str | None = None
    step_id: str | None = None
    participant: str | None = None  # requester or named assignee
    # Only requests at one of these steps (a store may ignore it: callers filter again). Empty: none.
    step_ids: tuple[str, ...] | None = None
    # Only requests whose last action (or filing) was on or after this day, give or take a day for time
    # zones (a store may ignore it: callers filter again).
    changed_since: date | None = None
    # For list views that never read deliverables, observations or links: a store may leave them empty,
    # which makes reading thousands of requests much cheaper.
    brief: bool = False
    limit: int = 500


@dataclass(frozen=True)
class RequestRow:
    """A request's indexed facts, read without the whole request: enough to count and select."""

    number: str
    version: int
    status: Status
    step_id: str
    area: str
    due_date: date
    delivered_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in (Status.ACTIVE, Status.ON_HOLD)


@runtime_checkable
class RequestStore(Protocol):
    async def next_number(self, year: int) -> str:
        """A new request number, unique for the store: 2026-0001, 2026-0002…"""

    async def create(self, request: Request, history: list[HistoryEntry], effects: list[Effect]) -> None: ...

    async def get(self, number: str) -> Request:
        """Raises NotFound."""

    async def save(self, request: Request, expected_version: int, history: list[HistoryEntry],
                   effects: list[Effect]) -> None:
        """Write the transition and its effects together; ConcurrencyConflict if the stored version moved."""

    async def history(self, number: str) -> list[HistoryEntry]: ...

    async def histories(self, numbers: Iterable[str]) -> dict[str, list[HistoryEntry]]:
        """The histories of many requests at once (each in order); a number with none maps to []."""

    async def history_marks(self, numbers: Iterable[str]) -> dict[str, list[HistoryMark]]:
        """Like `histories`, only what the indicators read of each entry: cheap at tens of thousands."""

    async def find(self, query: RequestQuery) -> list[Request]: ...

    async def rows(self, query: RequestQuery) -> list[RequestRow]:
        """The same selection as `find`, as RequestRows."""

    async def due_effects(self, now: datetime, limit: int = 50) -> list[EffectRecord]:
        """Pending effects whose next attempt is due, oldest first."""

    async def claim_effect(self, effect_id: str, now: datetime, lease_seconds: int = 60) -> bool:
        """Take a pending effect for delivery; False if another worker holds it."""

    async def complete_effect(self, effect_id: str, result: dict) -> None: ...

    async def fail_effect(self, effect_id: str, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt; retry_at None means it stays failed, visible to the coordinator."""

    async def failed_effects(self, limit: int = 100) -> list[EffectRecord]: ...

    async def effect(self, effect_id: str) -> EffectRecord | None: ...

    async def stored_effect_ids(self, effect_ids: Iterable[str]) -> set[str]:
        """Which of these effect ids are stored (in any status)."""

    async def add_effects(self, effects: list[Effect]) -> list[str]:
        """Add effects outside a transition (reminders); an id already stored is skipped. Returns added ids."""

    async def save_reference(self, person_id: str, reference: dict) -> None:
        """The conversation reference Teams gave for a person, for proactive messages."""

    async def get_reference(self, person_id: str) -> dict | None: ...

    async def close(self) -> None: ...


@runtime_checkable
class Directory(Protocol):
    """Who is who: people, their roles, and each area's director."""

    async def person(self, person_id: str) -> Person | None: ...

    async def people_with_role(self, role: str) -> list[Person]: ...

    async def director_of(self, area: str) -> Person | None: ...

    async def areas(self) -> dict[str, str]:
        """Area code → Spanish name."""


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    subject: str
    html: str
    idempotency_key: str
    cc: tuple[str, ...] = ()
    approval_card: dict | None = None  # Outlook actionable message (issue 6)


@dataclass(frozen=True)
class MeetingRequest:
    subject: str
    start: datetime
    minutes: int
    attendees: tuple[str, ...]
    body_html: str
    transaction_id: str


@runtime_checkable
class Mailer(Protocol):
    async def send(self, email: Email) -> dict: ...


@runtime_checkable
class Calendar(Protocol):
    async def create_meeting(self, meeting: MeetingRequest) -> dict:
        """Returns at least {"id", "join_url"}; the same transaction_id never creates a second event."""

    async def free_slots(self, attendees: tuple[str, ...], day: date, minutes: int) -> list[datetime]: ...


@runtime_checkable
class FileStore(Protocol):
    async def put(self, folder: str, name: str, content: bytes) -> dict:
        """Store a file under a folder; returns {"id", "url"}."""

    async def copy_from_url(self, folder: str, name: str, url: str) -> dict: ...

    async def archive(self, source_refs: list[str], path: str) -> dict: ...


@runtime_checkable
class Notifier(Protocol):
    """Delivers a Teams message or card to a person; raises Unreachable when it has no way to."""

    async def notify(self, person_id: str, message: dict) -> dict: ...


class Unreachable(Exception):
    """The bot cannot reach this person yet (they never talked to it)."""


class Clock(Protocol):
    def now(self) -> datetime: ...
