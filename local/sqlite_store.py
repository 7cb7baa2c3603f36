"""The durable request store on the embedded default: one SQLite file, shared safely by processes and coroutines."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from procedure.request import Effect, HistoryEntry, Request, Status
from services.ports import ConcurrencyConflict, EffectRecord, HistoryMark, NotFound, RequestQuery, RequestRow

BUSY_TIMEOUT_MS = 10_000
OPEN_STATUSES = (Status.ACTIVE.value, Status.ON_HOLD.value)
# Brief requests kept parsed, by (number, version): about 6 KB each, so the default holds every open
# request of a busy office (10,000) in some 60 MB. Parsing one costs ~50 µs; list views read thousands.
BRIEF_CACHE_SIZE = 12_000
BRIEF_JSON = "json_remove(json, '$.deliverables', '$.observations', '$.links')"
CHUNK = 500  # numbers per IN (...) list, far under SQLite's limit on bound parameters

# Each migration takes the schema from version i to i+1; append new ones, never edit a shipped one.
SCHEMA_V1 = [
    """CREATE TABLE requests (
        number TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        status TEXT NOT NULL,
        step_id TEXT NOT NULL,
        area TEXT NOT NULL,
        requester_id TEXT NOT NULL,
        due_date TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        json TEXT NOT NULL
    )""",
    "CREATE INDEX requests_status ON requests (status)",
    "CREATE INDEX requests_area ON requests (area)",
    "CREATE INDEX requests_step ON requests (step_id)",
    "CREATE INDEX requests_requester ON requests (requester_id)",
    # Requester and every named assignee, so "my requests" is one indexed lookup.
    """CREATE TABLE participants (
        request_number TEXT NOT NULL REFERENCES requests (number) ON DELETE CASCADE,
        person_id TEXT NOT NULL,
        PRIMARY KEY (request_number, person_id)
    )""",
    "CREATE INDEX participants_person ON participants (person_id)",
    """CREATE TABLE history (
        request_number TEXT NOT NULL REFERENCES requests (number) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (request_number, version, seq)
    )""",
    # No foreign key to requests: an effect may concern something other than a stored request (a digest).
    """CREATE TABLE effects (
        id TEXT PRIMARY KEY,
        request_number TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        lease_until REAL,
        last_error TEXT NOT NULL DEFAULT '',
        result TEXT NOT NULL DEFAULT '{}',
        json TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX effects_due ON effects (status, next_attempt_at)",
    "CREATE INDEX effects_request ON effects (request_number)",
    "CREATE INDEX effects_created ON effects (created_at)",
    "CREATE TABLE counters (year INTEGER PRIMARY KEY, last INTEGER NOT NULL)",
    "CREATE TABLE conversation_references (person_id TEXT PRIMARY KEY, json TEXT NOT NULL)",
]


def _run(statements: list[str]) -> Callable[[sqlite3.Connection], None]:
    def migrate(conn: sqlite3.Connection) -> None:
        for sql in statements:
            conn.execute(sql)

    return migrate


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_run(SCHEMA_V1)]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file up to SCHEMA_VERSION; safe when several processes open a new file at once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read inside the write lock: another process may have migrated while we waited for it.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"The database schema is version {current}, newer than this code's {SCHEMA_VERSION}: "
                "update the application before opening this file."
            )
        for version in range(current, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
        if current != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def _instant(moment: datetime | None) -> float | None:
    """Seconds since the epoch, so instants in any zone compare correctly; a naive time is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


class SqliteRequestStore:
    """RequestStore on one SQLite file (WAL). Every method runs its transaction to the end without
    yielding to the event loop, so coroutines never interleave inside one; BEGIN IMMEDIATE takes the
    file's write lock up front, so another process's transaction waits (busy_timeout) instead of failing
    half-way through."""

    def __init__(self, path: Path, *, brief_cache_size: int = BRIEF_CACHE_SIZE):
        self.path = Path(path)
        # Requests are frozen models and a (number, version) never changes: safe to share between callers.
        self._brief: OrderedDict[tuple[str, int], Request] = OrderedDict()
        self._brief_cache_size = brief_cache_size
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the module never opens transactions behind our back; we say BEGIN ourselves.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000,
        )
        self._lock = threading.RLock()  # one connection; guards callers that reach it from worker threads
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a transition the user was told about survives a power cut too; writes are few.
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    # ── plumbing ──

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("The request store is closed.")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    # ── requests ──

    async def next_number(self, year: int) -> str:
        with self._write() as conn:
            (last,) = conn.execute(
                "INSERT INTO counters (year, last) VALUES (?, 1) "
                "ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last",
                (year,),
            ).fetchone()
        return f"{year}-{last:04d}"

    async def create(self, request: Request, history: list[HistoryEntry], effects: list[Effect]) -> None:
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO requests (number, version, status, step_id, area, requester_id, due_date, "
                    "updated_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (request.number, request.version, *self._columns(request)),
                )
            except sqlite3.IntegrityError as exc:
                raise ConcurrencyConflict(f"Request {request.number} already exists.") from exc
            self._write_transition(conn, request, history, effects)

    async def get(self, number: str) -> Request:
        rows = self._read("SELECT json FROM requests WHERE number = ?", (number,))
        if not rows:
            raise NotFound(number)
        return Request.model_validate_json(rows[0][0])

    async def save(self, request: Request, expected_version: int, history: list[HistoryEntry],
                   effects: list[Effect]) -> None:
        if request.version <= expected_version:
            # A save that does not move the version would let two writers both pass the check below.
            raise ValueError(f"Request {request.number}: version {request.version} does not follow "
                             f"{expected_version}.")
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE requests SET version = ?, status = ?, step_id = ?, area = ?, requester_id = ?, "
                "due_date = ?, updated_at = ?, json = ? WHERE number = ? AND version = ?",
                (request.version, *self._columns(request), request.number, expected_version),
            ).rowcount
            if updated == 0:
                exists = conn.execute("SELECT version FROM requests WHERE number = ?", (request.number,)).fetchone()
                if exists is None:
                    raise NotFound(request.number)
                raise ConcurrencyConflict(
                    f"Request {request.number} is at version {exists[0]}, not {expected_version}."
                )
            self._write_transition(conn, request, history, effects)

    @staticmethod
    def _columns(request: Request) -> tuple:
        updated_at = request.last_action_at or request.filed_at
        return (request.status.value, request.step_id, request.area, request.requester_id,
                request.due_date.isoformat(), updated_at.isoformat(), request.model_dump_json())

    def _write_transition(self, conn: sqlite3.Connection, request: Request, history: list[HistoryEntry],
                          effects: list[Effect]) -> None:
        conn.execute("DELETE FROM participants WHERE request_number = ?", (request.number,))
        people = {request.requester_id, *request.assignees.values()}
        conn.executemany("INSERT INTO participants (request_number, person_id) VALUES (?, ?)",
                         [(request.number, p) for p in sorted(people) if p])
        conn.executemany(
            "INSERT INTO history (request_number, version, seq, json) VALUES (?, ?, ?, ?)",
            [(h.request_number, h.version, h.seq, h.model_dump_json()) for h in history],
        )
        # Plain INSERT: a transition's effect ids are new by construction; a clash is a bug, and it
        # rolls the whole transition back rather than dropping an effect silently.
        self._insert_effects(conn, effects, "INSERT")

    @staticmethod
    def _insert_effects(conn: sqlite3.Connection, effects: list[Effect], verb: str) -> list[str]:
        added = []
        created = time.time()
        for effect in effects:
            cursor = conn.execute(
                f"{verb} INTO effects (id, request_number, kind, json, created_at) VALUES (?, ?, ?, ?, ?)",
                (effect.id, effect.request_number, effect.kind.value, effect.model_dump_json(), created),
            )
            if cursor.rowcount:
                added.append(effect.id)
        return added

    async def history(self, number: str) -> list[HistoryEntry]:
        rows = self._read("SELECT json FROM history WHERE request_number = ? ORDER BY version, seq", (number,))
        return [HistoryEntry.model_validate_json(j) for (j,) in rows]

    async def histories(self, numbers: Iterable[str]) -> dict[str, list[HistoryEntry]]:
        wanted = list(dict.fromkeys(numbers))
        found: dict[str, list[HistoryEntry]] = {n: [] for n in wanted}
        for i in range(0, len(wanted), CHUNK):
            chunk = wanted[i:i + CHUNK]
            rows = self._read(
                f"SELECT request_number, json FROM history WHERE request_number IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY request_number, version, seq", chunk)
            for number, data in rows:
                found[number].append(HistoryEntry.model_validate_json(data))
        return found

    async def history_marks(self, numbers: Iterable[str]) -> dict[str, list[HistoryMark]]:
        # json_extract runs in SQLite's C code: no entry is parsed in Python (1.2 M entries at 50,000 requests).
        wanted = list(dict.fromkeys(numbers))
        found: dict[str, list[HistoryMark]] = {n: [] for n in wanted}
        for i in range(0, len(wanted), CHUNK):
            chunk = wanted[i:i + CHUNK]
            rows = self._read(
                "SELECT request_number, version, seq, json_extract(json, '$.step_id'), json_extract(json, '$.action'), "
                "json_extract(json, '$.at'), json_extract(json, '$.round') FROM history "
                f"WHERE request_number IN ({', '.join('?' * len(chunk))}) ORDER BY request_number, version, seq", chunk)
            for number, *mark in rows:
                found[number].append(HistoryMark(*mark))
        return found

    @staticmethod
    def _where(query: RequestQuery) -> tuple[str, list] | None:
        """The WHERE clause (with its parameters) for a query; None when it selects nothing."""
        where, params = [], []
        if query.open_only:
            where.append(f"status IN ({', '.join('?' for _ in OPEN_STATUSES)})")
            params += OPEN_STATUSES
        if query.area is not None:
            where.append("area = ?")
            params.append(query.area)
        if query.step_id is not None:
            where.append("step_id = ?")
            params.append(query.step_id)
        if query.step_ids is not None:
            if not query.step_ids:
                return None
            where.append(f"step_id IN ({', '.join('?' for _ in query.step_ids)})")
            params += list(query.step_ids)
        if query.participant is not None:
            where.append("number IN (SELECT request_number FROM participants WHERE person_id = ?)")
            params.append(query.participant)
        if query.changed_since is not None:
            # updated_at is ISO text with its own offset: a day's margin keeps the text comparison safe.
            where.append("updated_at >= ?")
            params.append((query.changed_since - timedelta(days=1)).isoformat())
        return (" WHERE " + " AND ".join(where) if where else ""), params

    async def find(self, query: RequestQuery) -> list[Request]:
        selection = self._where(query)
        if selection is None:
            return []
        where, params = selection
        if not query.brief:
            return [Request.model_validate_json(j) for (j,) in self._read(
                f"SELECT json FROM requests{where} ORDER BY number LIMIT ?", [*params, query.limit])]
        with self._lock:
            conn = self.conn
            # One read transaction: the versions listed and the requests parsed come from the same snapshot.
            conn.execute("BEGIN")
            try:
                keys = conn.execute(f"SELECT number, version FROM requests{where} ORDER BY number LIMIT ?",
                                    [*params, query.limit]).fetchall()
                missing = [number for number, version in keys if (number, version) not in self._brief]
                parsed: dict[str, Request] = {}
                for i in range(0, len(missing), CHUNK):
                    chunk = missing[i:i + CHUNK]
                    for (data,) in conn.execute(f"SELECT {BRIEF_JSON} FROM requests WHERE number IN "
                                                f"({', '.join('?' * len(chunk))})", chunk):
                        request = Request.model_validate_json(data)
                        parsed[request.number] = request
            finally:
                conn.execute("COMMIT")
            found = []
            for key in keys:
                request = parsed.get(key[0]) or self._brief.get(key)
                if request is None:
                    continue
                found.append(request)
                self._brief[key] = request
                self._brief.move_to_end(key)
            while len(self._brief) > self._brief_cache_size:
                self._brief.popitem(last=False)
            return found

    async def rows(self, query: RequestQuery) -> list[RequestRow]:
        selection = self._where(query)
        if selection is None:
            return []
        where, params = selection
        rows = self._read(
            "SELECT number, version, status, step_id, area, due_date, json_extract(json, '$.delivered_at') "
            f"FROM requests{where} ORDER BY number LIMIT ?", [*params, query.limit])
        return [RequestRow(number=n, version=v, status=Status(st), step_id=step, area=area,
                           due_date=date.fromisoformat(due),
                           delivered_at=datetime.fromisoformat(delivered) if delivered else None)
                for n, v, st, step, area, due, delivered in rows]

    # ── effects ──

    _EFFECT_COLUMNS = "json, status, attempts, next_attempt_at, last_error, result"

    @staticmethod
    def _record(row: tuple) -> EffectRecord:
        data, status, attempts, next_at, last_error, result = row
        return EffectRecord(effect=Effect.model_validate_json(data), status=status, attempts=attempts,
                            next_attempt_at=_moment(next_at), last_error=last_error, result=json.loads(result))

    async def due_effects(self, now: datetime, limit: int = 50) -> list[EffectRecord]:
        t = _instant(now)
        # An effect another worker holds under a live lease is not due for anyone else.
        rows = self._read(
            f"SELECT {self._EFFECT_COLUMNS} FROM effects WHERE status = 'pending' "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
            "AND (lease_until IS NULL OR lease_until < ?) ORDER BY created_at, rowid LIMIT ?",
            (t, t, limit),
        )
        return [self._record(r) for r in rows]

    async def claim_effect(self, effect_id: str, now: datetime, lease_seconds: int = 60) -> bool:
        t = _instant(now)
        with self._write() as conn:
            claimed = conn.execute(
                "UPDATE effects SET lease_until = ? WHERE id = ? AND status = 'pending' "
                "AND (lease_until IS NULL OR lease_until < ?)",
                (t + lease_seconds, effect_id, t),
            ).rowcount
        return claimed == 1

    async def complete_effect(self, effect_id: str, result: dict) -> None:
        with self._write() as conn:
            done = conn.execute(
                "UPDATE effects SET status = 'done', result = ?, lease_until = NULL WHERE id = ?",
                (json.dumps(result), effect_id),
            ).rowcount
            if not done:
                raise NotFound(effect_id)

    async def fail_effect(self, effect_id: str, error: str, retry_at: datetime | None) -> None:
        with self._write() as conn:
            failed = conn.execute(
                "UPDATE effects SET attempts = attempts + 1, last_error = ?, lease_until = NULL, "
                "status = ?, next_attempt_at = ? WHERE id = ?",
                (error, "pending" if retry_at is not None else "failed", _instant(retry_at), effect_id),
            ).rowcount
            if not failed:
                raise NotFound(effect_id)

    async def failed_effects(self, limit: int = 100) -> list[EffectRecord]:
        rows = self._read(
            f"SELECT {self._EFFECT_COLUMNS} FROM effects WHERE status = 'failed' ORDER BY created_at, rowid LIMIT ?",
            (limit,),
        )
        return [self._record(r) for r in rows]

    async def effect(self, effect_id: str) -> EffectRecord | None:
        rows = self._read(f"SELECT {self._EFFECT_COLUMNS} FROM effects WHERE id = ?", (effect_id,))
        return self._record(rows[0]) if rows else None

    async def stored_effect_ids(self, effect_ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(effect_ids))
        stored: set[str] = set()
        for i in range(0, len(wanted), CHUNK):
            chunk = wanted[i:i + CHUNK]
            stored |= {i for (i,) in self._read(
                f"SELECT id FROM effects WHERE id IN ({', '.join('?' * len(chunk))})", chunk)}
        return stored

    async def add_effects(self, effects: list[Effect]) -> list[str]:
        with self._write() as conn:
            return self._insert_effects(conn, effects, "INSERT OR IGNORE")

    # ── conversation references ──

    async def save_reference(self, person_id: str, reference: dict) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO conversation_references (person_id, json) VALUES (?, ?) "
                "ON CONFLICT (person_id) DO UPDATE SET json = excluded.json",
                (person_id, json.dumps(reference)),
            )

    async def get_reference(self, person_id: str) -> dict | None:
        rows = self._read("SELECT json FROM conversation_references WHERE person_id = ?", (person_id,))
        return json.loads(rows[0][0]) if rows else None

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
