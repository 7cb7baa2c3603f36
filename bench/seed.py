"""Requests at chosen steps, made by the pure engine and written in bulk into a SQLite store (benches and fault tests).

Walking thousands of requests through the service one transition at a time would cost one durable
SQLite transaction per step. Instead a few *templates* are walked once with the engine (as the people of
the people file, so the stored state is exactly what the bot would have written), and copies of them,
renumbered, are written in one transaction through the store's own row writer (`_write_transition`).
The copies carry their history; their effects are taken as already delivered (none are stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from procedure import engine
from procedure.engine import Action, Command, DeliverableInput, Intake, MeetingProposal, Person
from procedure.model import Deliverable, Procedure, StepKind
from procedure.request import Classification, HistoryEntry, Request
from procedure.roles import Role

CLASSIFICATIONS = {
    "A": dict(piece_type="A", topic="promotional", investment_project=False, project_name="", audience="external",
              services=frozenset({"animation", "editing"}), outside_producer=False),
    "B": dict(piece_type="B", topic="institutional", investment_project=False, project_name="",
              audience="external", services=frozenset({"editing"}), outside_producer=False),
}


@dataclass
class Snapshot:
    """A request as it stood on entering `request.step_id`, with the history that led there."""

    request: Request
    history: list[HistoryEntry] = field(default_factory=list)


async def everyone(directory) -> list[Person]:
    """Every person of the directory, each once (people with roles, then each area's director)."""
    people: dict[str, Person] = {}
    for role in Role:
        if role is Role.OCOIM_TEAM:
            continue
        for p in await directory.people_with_role(role.value):
            people.setdefault(p.id, p)
    for area in await directory.areas():
        director = await directory.director_of(area)
        if director is not None:
            people.setdefault(director.id, director)
    return list(people.values())


def _command(proc: Procedure, request: Request, action: Action, piece_type: str, now: datetime) -> Command:
    step = proc[request.step_id]
    kw: dict = {}
    if action is Action.COMPLETE:
        kw["deliverables"] = tuple(
            DeliverableInput(k, f"https://proinversion.sharepoint.com/sites/ocoim/{request.number}/{k.value}")
            for k in step.deliverables if k not in (Deliverable.ARCHIVE_PATH, Deliverable.DISTRIBUTION_CHANNELS))
        if Deliverable.DISTRIBUTION_CHANNELS in step.deliverables:
            kw["deliverables"] += (DeliverableInput(Deliverable.DISTRIBUTION_CHANNELS, "Redes sociales"),)
        if step.kind is StepKind.MEETING:
            kw["meeting"] = MeetingProposal(now + timedelta(days=3))
        if step.id == proc.start:
            kw["classification"] = Classification(**CLASSIFICATIONS[piece_type])
        if step.id == "PRO-01":
            kw["production_deadline"] = (now + timedelta(days=60)).date()
    if action is Action.REQUEST_CHANGES:
        kw["observation"] = "Ajustar el cierre."
    return Command(action, request.version, request.step_id, **kw)


async def walk(proc: Procedure, directory, lead_times: dict[str, int], *, requester_id: str, area: str,
               piece_type: str = "A", filed_at: datetime, step_days: float = 1.0,
               title: str = "Video institucional") -> list[Snapshot]:
    """One request from filing to END; a snapshot on entering every step (the last one at END).

    Each step is taken `step_days` after the previous one, so templates filed long ago are late."""
    people = await everyone(directory)
    requester = await directory.person(requester_id)
    intake = Intake(title=title, area=area, due_date=(filed_at + timedelta(days=120)).date(),
                    purpose="Redes sociales", links=("https://www.gob.pe/proinversion",))
    outcome = engine.file_request(proc, intake, "2000-0001", requester, filed_at, set(await directory.areas()),
                                  lead_times)
    snapshots = [Snapshot(outcome.request, list(outcome.history))]
    now = filed_at
    for _ in range(200):
        request = snapshots[-1].request
        if request.step_id == "END":
            return snapshots
        step = proc[request.step_id]
        action = Action.APPROVE if step.kind is StepKind.REVIEW else Action.COMPLETE
        actor = next((p for p in people if action in engine.open_actions(proc, request, p)), None)
        if actor is None:
            raise RuntimeError(f"nobody in the people file may {action.value} at {request.step_id}")
        now = now + timedelta(days=step_days)
        outcome = engine.apply(proc, request, _command(proc, request, action, piece_type, now), actor, now,
                               lead_times)
        snapshots.append(Snapshot(outcome.request, snapshots[-1].history + list(outcome.history)))
    raise RuntimeError("the template walk did not end")


def at_step(snapshots: list[Snapshot], step_id: str) -> Snapshot:
    return next(s for s in snapshots if s.request.step_id == step_id)


def renumbered(snapshot: Snapshot, number: str, **changes) -> tuple[Request, list[HistoryEntry]]:
    request = snapshot.request.model_copy(update={"number": number, **changes})
    history = [h.model_copy(update={"request_number": number}) for h in snapshot.history]
    return request, history


def write_bulk(store, rows: list[tuple[Request, list[HistoryEntry]]]) -> None:
    """Insert requests with their history in one transaction (the store's own row writer), and move the
    number counter past them so requests filed later get new numbers."""
    with store._write() as conn:  # noqa: SLF001 - a documented bulk path for benches and tests
        conn.executemany(
            "INSERT INTO requests (number, version, status, step_id, area, requester_id, due_date, updated_at, json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.number, r.version, *store._columns(r)) for r, _ in rows])  # noqa: SLF001
        for request, history in rows:
            store._write_transition(conn, request, history, [])  # noqa: SLF001
        last: dict[int, int] = {}
        for request, _ in rows:
            year, n = request.number.split("-")
            last[int(year)] = max(last.get(int(year), 0), int(n))
        for year, n in last.items():
            conn.execute("INSERT INTO counters (year, last) VALUES (?, ?) "
                         "ON CONFLICT (year) DO UPDATE SET last = max(last, excluded.last)", (year, n))


async def save_references_async(store, people_ids: list[str], service_url: str) -> None:
    for pid in people_ids:
        await store.save_reference(pid, {
            "activityId": "1712000000000", "user": {"id": f"29:{pid}", "aadObjectId": pid},
            "bot": {"id": "28:bot", "name": "Claqueta"},
            "conversation": {"id": f"a:{pid}", "conversationType": "personal",
                             "tenantId": "5f3c1a2e-8d4b-4c7a-9e21-0b6d7f8a9c10"},
            "channelId": "msteams", "locale": "es-PE", "serviceUrl": service_url})


async def prepared_store(data_dir: Path, people_file: Path, deadlines_file: Path | None = None):
    """The pieces needed to seed a data folder the app will open: procedure, store, directory, lead times."""
    from config.deadlines import load_deadlines
    from config.settings import CONFIG_DIR
    from local.directory import YamlDirectory
    from local.sqlite_store import SqliteRequestStore
    from procedure.definition import PROCEDURE

    data_dir.mkdir(parents=True, exist_ok=True)
    deadlines = load_deadlines(deadlines_file or CONFIG_DIR / "deadlines.yaml")
    store = SqliteRequestStore(data_dir / "claqueta.db")
    directory = YamlDirectory(people_file)
    return PROCEDURE, store, directory, deadlines


def numbers(year: int, start: int, count: int) -> list[str]:
    return [f"{year}-{i:04d}" for i in range(start, start + count)]


__all__ = ["Snapshot", "walk", "at_step", "renumbered", "write_bulk", "save_references_async", "everyone",
           "prepared_store", "numbers"]
