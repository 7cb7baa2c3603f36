"""Faults under load: a throttling connector, conflicting and repeated clicks — one transition each, every effect delivered once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import build, create_web_app
from bench import seed
from cards.verbs import Inputs, Verb
from config.settings import Settings
from tests import activities
from tests.fake_connector import FakeConnector
from tests.test_bot_flow import IDS, user

ROOT = Path(__file__).resolve().parents[1]
CARD = "application/vnd.microsoft.card.adaptive"


class Office:
    def __init__(self, client: TestClient, connector: FakeConnector, components):
        self.client, self.connector, self.components = client, connector, components
        self.store = components.store

    async def click(self, who: str, verb: Verb, data: dict) -> dict:
        activity = activities.card_action(verb.value, data, service_url=self.connector.service_url, user=user(who))
        activity["conversation"]["id"] = f"a:{who}"
        response = await self.client.post("/api/messages", json=activity)
        assert response.status == 200
        return await response.json()

    async def at_pre14(self, count: int) -> list[tuple[str, int]]:
        """`count` DSI requests waiting for the DSI director's conformity (PRE-14)."""
        c = self.components
        snapshots = await seed.walk(c.service.proc, c.directory, c.deadlines.lead_time,
                                    requester_id=IDS["requester"], area="DSI",
                                    filed_at=c.clock.now(), step_days=0.01)
        rows = [seed.renumbered(seed.at_step(snapshots, "PRE-14"), n) for n in seed.numbers(2026, 1, count)]
        seed.write_bulk(self.store, rows)
        return [(r.number, r.version) for r, _ in rows]

    async def drain(self, rounds: int = 400) -> None:
        """Run the dispatcher until nothing is pending (failed attempts are retried at once: base_delay 0)."""
        dispatcher = self.components.dispatcher
        for _ in range(rounds):
            await dispatcher.run_once()
            (pending,) = self.store.conn.execute("SELECT count(*) FROM effects WHERE status = 'pending'").fetchone()
            if pending == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("effects still pending")

    def effects(self) -> list[tuple[str, str, str]]:
        return self.store.conn.execute("SELECT id, status, result FROM effects ORDER BY id").fetchall()


@pytest.fixture
async def office(tmp_path):
    settings = Settings(_env_file=None, local_mode=True, app_id="", data_dir=tmp_path,
                        people_file=ROOT / "config" / "people.example.yaml")
    components = build(settings)
    components.dispatcher.base_delay = 0.0  # a failed attempt is due again at once: no waiting in tests
    async with FakeConnector() as connector:
        await seed.save_references_async(components.store, list(IDS.values()), connector.service_url)
        async with TestClient(TestServer(create_web_app(components))) as client:
            yield Office(client, connector, components)


def version_of(answer: dict) -> int:
    return answer["value"]["refresh"]["action"]["data"]["version"]


async def test_a_throttling_connector_delays_notifications_but_loses_or_repeats_none(office):
    requests = await office.at_pre14(12)
    # Fewer refusals in a row than one effect's whole budget (5 sends × 6 attempts): all must get through.
    office.connector.fail_next(20, status=429, retry_after="0")
    answers = await asyncio.gather(*(
        office.click("director_dsi", Verb.REVIEW_APPROVE, {"number": n, "version": v, "step": "PRE-14"})
        for n, v in requests))
    assert all(a["statusCode"] == 200 and a["type"] == CARD for a in answers)
    await office.drain()

    effects = office.effects()
    assert effects and {status for _, status, _ in effects} == {"done"}
    assert sum(1 for c in office.connector.calls if c.status == 429) == 20  # the throttling did happen
    # Each delivered card or message is one effect's delivery: as many successful posts as effects that sent.
    sent = [json.loads(result)["activity_id"] for _, _, result in effects if "activity_id" in json.loads(result)]
    assert len(sent) == len(set(sent)) == len(office.connector.delivered)
    per_person = Counter(c.conversation_id for c in office.connector.delivered)
    assert sent and per_person  # the coordinator and the team heard of every conformity
    for number, version in requests:
        request = await office.store.get(number)
        assert request.step_id != "PRE-14" and request.version == version + 1
        history = await office.store.history(number)
        # Complete: one or more entries for every version, from the filing (1) to this approval.
        assert sorted({h.version for h in history}) == list(range(1, version + 2))
        assert any(h.version == version + 1 and h.step_id == "PRE-14" and h.action == "review_approved"
                   for h in history), [(h.version, h.step_id, h.action) for h in history[-3:]]


async def test_fifty_conflicting_clicks_at_once_make_one_transition(office):
    ((number, version),) = await office.at_pre14(1)
    clicks = [
        (Verb.REVIEW_APPROVE, {"number": number, "version": version, "step": "PRE-14"}) if i % 2 else
        (Verb.REVIEW_CHANGES, {"number": number, "version": version, "step": "PRE-14",
                               Inputs.CHANGES_OBSERVATION: f"Ajuste {i}"})
        for i in range(50)
    ]
    answers = await asyncio.gather(*(office.click("director_dsi", verb, data) for verb, data in clicks))
    assert all(a["statusCode"] == 200 and a["type"] == CARD for a in answers)
    history = await office.store.history(number)
    assert (await office.store.get(number)).version == version + 1
    assert max(h.version for h in history) == version + 1
    assert len([h for h in history if h.step_id == "PRE-14" and h.version == version + 1]) == 1
    winners = [a for a in answers if "desactualizada" not in json.dumps(a["value"], ensure_ascii=False)]
    assert len(winners) == 1  # every other click was told the card was stale, and by whom
    assert version_of(winners[0]) == version + 1


async def test_the_same_click_delivered_three_times_at_once_makes_one_transition(office):
    ((number, version),) = await office.at_pre14(1)
    data = {"number": number, "version": version, "step": "PRE-14"}
    answers = await asyncio.gather(*(office.click("director_dsi", Verb.REVIEW_APPROVE, data) for _ in range(3)))
    assert all(a["statusCode"] == 200 for a in answers)
    assert (await office.store.get(number)).version == version + 1
    history = await office.store.history(number)
    assert max(h.version for h in history) == version + 1
    assert [h.action for h in history if h.step_id == "PRE-14"] == ["review_approved"]
    await office.drain()
    emails = sorted(p.name for p in (office.components.settings.data_dir / "correos").glob("*.eml"))
    assert len(emails) == len(set(emails))
