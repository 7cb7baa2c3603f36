"""The SQLite request store: the store contract, plus restarts and several processes sharing one file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from local.sqlite_store import SCHEMA_VERSION, SqliteRequestStore
from services.ports import ConcurrencyConflict, RequestQuery
from tests.store_contract import NOW, REQUESTER, StoreContract, edit, file_into, reminder, save, step_forward

ROOT = Path(__file__).resolve().parents[1]


class TestSqliteStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path):
        store = SqliteRequestStore(tmp_path / "data" / "claqueta.db")
        yield store
        await store.close()


async def test_everything_survives_a_restart(tmp_path):
    path = tmp_path / "var" / "claqueta.db"
    store = SqliteRequestStore(path)
    filed = await file_into(store)
    outcome = step_forward(filed.request)
    request = await save(store, filed.request, outcome)
    await store.fail_effect(filed.effects[0].id, "Teams no respondió", None)
    await store.save_reference("r", {"conversation": {"id": "a:1"}})
    await store.close()

    reopened = SqliteRequestStore(path)
    try:
        assert await reopened.get(request.number) == request
        assert await reopened.history(request.number) == filed.history + outcome.history
        assert [r.effect for r in await reopened.due_effects(NOW)] == filed.effects[1:] + outcome.effects
        assert [r.effect for r in await reopened.failed_effects()] == filed.effects[:1]
        assert await reopened.get_reference("r") == {"conversation": {"id": "a:1"}}
        assert await reopened.find(RequestQuery(participant=REQUESTER.id)) == [request]
        assert await reopened.next_number(2026) == "2026-0002"
    finally:
        await reopened.close()


async def test_two_app_instances_on_one_file_never_both_win_a_save(tmp_path):
    path = tmp_path / "claqueta.db"
    first, second = SqliteRequestStore(path), SqliteRequestStore(path)
    try:
        filed = await file_into(first)
        read_by_second = await second.get(filed.request.number)
        assert read_by_second == filed.request
        attempts = [(first if i % 2 else second, edit(filed.request, f"Propósito {i}")) for i in range(20)]
        results = await asyncio.gather(
            *(s.save(o.request, filed.request.version, o.history, o.effects) for s, o in attempts),
            return_exceptions=True,
        )
        winners = [o for (_, o), r in zip(attempts, results) if r is None]
        assert len(winners) == 1
        assert all(isinstance(r, ConcurrencyConflict) for r in results if r is not None)
        assert await first.get(filed.request.number) == winners[0].request
        assert await second.history(filed.request.number) == filed.history + winners[0].history
    finally:
        await first.close()
        await second.close()


WORKER = textwrap.dedent("""
    import asyncio, sys
    from datetime import datetime
    from pathlib import Path
    from local.sqlite_store import SqliteRequestStore

    async def main(path, now):
        store = SqliteRequestStore(Path(path))
        # Both workers start claiming together, so they really contend for the same effects.
        Path(path).with_name("ready-" + sys.argv[3]).touch()
        go = Path(path).with_name("go")
        while not go.exists():
            await asyncio.sleep(0.01)
        while True:
            due = await store.due_effects(now, limit=10)
            if not due:
                break
            for record in due:
                if await store.claim_effect(record.id, now, lease_seconds=600):
                    print(record.id, flush=True)
                    await asyncio.sleep(0.002)  # delivering: the other worker tries this id meanwhile
                    await store.complete_effect(record.id, {"by": sys.argv[3]})
        await store.close()

    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
""")


async def test_two_processes_delivering_effects_never_take_the_same_one(tmp_path):
    path = tmp_path / "claqueta.db"
    store = SqliteRequestStore(path)
    try:
        number = (await file_into(store)).request.number
        days = [NOW.date().fromordinal(NOW.date().toordinal() + i) for i in range(300)]
        ids = await store.add_effects([reminder(number, d) for d in days])
        ids += [e.id for e in (await store.due_effects(NOW)) if e.id not in ids]
        script = tmp_path / "worker.py"
        script.write_text(WORKER)
        workers = [
            subprocess.Popen([sys.executable, str(script), str(path), NOW.isoformat(), name], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
            for name in ("a", "b")
        ]
        while not all((tmp_path / f"ready-{name}").exists() for name in ("a", "b")):
            assert all(w.poll() is None for w in workers), "a worker stopped before starting"
            await asyncio.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            outputs.append(out.split())

        claimed_a, claimed_b = outputs
        assert sorted(claimed_a + claimed_b) == sorted(ids)  # each effect exactly once, none lost
        assert len(set(claimed_a + claimed_b)) == len(claimed_a) + len(claimed_b)
        assert await store.due_effects(NOW) == []
        for effect_id in ids:
            record = await store.effect(effect_id)
            assert record.status == "done"
    finally:
        await store.close()


async def test_the_file_records_its_schema_version_and_a_newer_one_is_not_opened(tmp_path):
    path = tmp_path / "claqueta.db"
    await SqliteRequestStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        SqliteRequestStore(path)
