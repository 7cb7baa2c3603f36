"""The bot killed with SIGKILL in the middle of a burst of clicks, then restarted: nothing accepted is lost, nothing sent twice.

An effect claimed when the process died is retried once its lease runs out: the app runs here with a
2-second lease (CLAQUETA_EFFECT_LEASE_SECONDS) so the test fits in the normal run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections import Counter
from datetime import timedelta
from email.parser import BytesParser
from email import policy
from pathlib import Path

import aiohttp

from bench import seed
from bench.run import start_app, wait_drained
from cards.verbs import Verb
from tests import activities
from tests.fake_connector import FakeConnector
from tests.test_bot_flow import IDS, inputs_for, user

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = ROOT / "config" / "people.example.yaml"
BURST = 40


async def _seed(data_dir: Path, service_url: str) -> list[tuple[str, int, str, str]]:
    """Half the requests at PRE-01 (completing it sends an email), half at PRE-13 (a meeting)."""
    proc, store, directory, deadlines = await seed.prepared_store(data_dir, PEOPLE)
    from datetime import datetime
    from zoneinfo import ZoneInfo

    snapshots = await seed.walk(proc, directory, deadlines.lead_time, requester_id=IDS["requester"], area="DSI",
                                filed_at=datetime.now(ZoneInfo("America/Lima")) - timedelta(days=2),
                                step_days=0.1)
    rows = []
    for i, number in enumerate(seed.numbers(2026, 1, BURST)):
        rows.append(seed.renumbered(seed.at_step(snapshots, "PRE-01" if i % 2 else "PRE-13"), number))
    seed.write_bulk(store, rows)
    await seed.save_references_async(store, list(IDS.values()), service_url)
    await store.close()
    return [(r.number, r.version, r.step_id, "coordinator") for r, _ in rows]


async def test_sigkill_in_the_middle_of_a_burst_loses_nothing_and_duplicates_nothing(tmp_path):
    async with FakeConnector() as connector:
        clicks = await _seed(tmp_path, connector.service_url)
        server = await start_app(tmp_path, CLAQUETA_EFFECT_LEASE_SECONDS="2")
        answers: dict[str, tuple[int, int]] = {}  # number → (sent version, version of the card answered)

        async def click(session, number, version, step, who):
            data = {"number": number, "version": version, "step": step, **inputs_for(step, number)}
            activity = activities.card_action(Verb.STEP_COMPLETE.value, data, service_url=connector.service_url,
                                              user=user(who))
            activity["conversation"]["id"] = f"a:{who}"
            async with session.post(server.url, json=activity) as response:
                body = await response.json()
            if response.status == 200 and body.get("statusCode") == 200:
                answers[number] = (version, body["value"]["refresh"]["action"]["data"]["version"])

        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(click(session, *c)) for c in clicks]
            while len(answers) < BURST // 3:
                await asyncio.sleep(0.005)
            os.kill(server.proc.pid, signal.SIGKILL)
            await asyncio.gather(*tasks, return_exceptions=True)
        server.proc.wait()
        assert BURST // 3 <= len(answers) < BURST  # the kill did land in the middle of the burst

        restarted = await start_app(tmp_path)
        try:
            drained = await wait_drained(tmp_path / "claqueta.db", timeout=150)
        finally:
            restarted.stop()
        assert drained is not None, "effects still pending after the restart"

    db = sqlite3.connect(tmp_path / "claqueta.db")
    accepted = {n: v for n, (v, answered) in answers.items() if answered == v + 1}
    assert accepted
    for number, version in accepted.items():  # every click the user saw succeed is in the store
        (stored,) = db.execute("SELECT version FROM requests WHERE number = ?", (number,)).fetchone()
        assert stored == version + 1
    for (number,) in db.execute("SELECT number FROM requests"):  # every request's history is complete
        (version,) = db.execute("SELECT version FROM requests WHERE number = ?", (number,)).fetchone()
        versions = [v for (v,) in db.execute("SELECT DISTINCT version FROM history WHERE request_number = ? "
                                             "ORDER BY version", (number,))]
        assert versions == list(range(1, version + 1)), number
    statuses = Counter(s for (s,) in db.execute("SELECT status FROM effects"))
    assert set(statuses) == {"done"}, statuses
    # Emails and meetings: one file per effect, each key once.
    email_effects = {i for (i,) in db.execute("SELECT id FROM effects WHERE kind = 'email'")}
    keys = [BytesParser(policy=policy.default).parse(p.open("rb"), headersonly=True)["X-Claqueta-Key"]
            for p in (tmp_path / "correos").glob("*.eml")]
    assert len(keys) == len(set(keys)) and set(keys) == email_effects
    meeting_effects = {i for (i,) in db.execute("SELECT id FROM effects WHERE kind = 'meeting'")}
    meetings = list((tmp_path / "reuniones").glob("*.ics"))
    assert len(meetings) == len(meeting_effects) and meeting_effects
    uids = [line for p in meetings for line in p.read_text().splitlines() if line.startswith("UID:")]
    assert len(uids) == len(set(uids))
    # No stray temporary file from a write cut short.
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and ".tmp" in p.name]
