"""Two app instances on one store, as App Service runs them: any instance serves any click, and nothing happens twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from app import build, create_web_app
from bench import seed
from cards.verbs import Inputs, Verb
from config.settings import Settings
from tests import activities
from tests.driving import NOW
from tests.fake_connector import FakeConnector
from tests.test_bot_flow import IDS, inputs_for, user
from tests.test_reminders import drive, morning

ROOT = Path(__file__).resolve().parents[1]
CARD = "application/vnd.microsoft.card.adaptive"


class Cluster:
    """Instances A and B: each its own process state (store connection, dispatcher, reminder schedule, web app)."""

    def __init__(self, connector: FakeConnector):
        self.connector = connector
        self.components: list = []
        self.clients: list[TestClient] = []

    async def click(self, instance: int, who: str, verb: Verb, data: dict) -> dict:
        activity = activities.card_action(verb.value, data, service_url=self.connector.service_url, user=user(who))
        activity["conversation"]["id"] = f"a:{who}"
        response = await self.clients[instance].post("/api/messages", json=activity)
        assert response.status == 200
        return await response.json()

    @property
    def store(self):
        return self.components[0].store

    def pending(self) -> int:
        return self.store.conn.execute("SELECT count(*) FROM effects WHERE status = 'pending'").fetchone()[0]

    async def drain(self, rounds: int = 400) -> None:
        """Both dispatchers deliver at the same time (their background loops run too) until nothing is pending."""
        for _ in range(rounds):
            await asyncio.gather(*(c.dispatcher.run_once() for c in self.components))
            if self.pending() == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("effects still pending")

    def effects(self) -> list[tuple[str, str, dict]]:
        rows = self.store.conn.execute("SELECT id, status, result FROM effects ORDER BY id").fetchall()
        return [(i, status, json.loads(result)) for i, status, result in rows]


async def cluster(tmp_path, stack: AsyncExitStack, *, now=NOW, before_start=None) -> Cluster:
    settings = Settings(_env_file=None, local_mode=True, app_id="", data_dir=tmp_path, now=now,
                        people_file=ROOT / "config" / "people.example.yaml")
    connector = await stack.enter_async_context(FakeConnector())
    nodes = Cluster(connector)
    nodes.components = [build(settings), build(settings)]  # two composition roots on one data folder
    for components in nodes.components:
        components.dispatcher.base_delay = 0.0
    await seed.save_references_async(nodes.store, list(IDS.values()), connector.service_url)
    if before_start is not None:
        await before_start(nodes.store)
    for components in nodes.components:
        # Each with its dispatcher loop and its reminder schedule running, as in production.
        app = create_web_app(components, schedule_reminders=True, dispatch_effects=True)
        nodes.clients.append(await stack.enter_async_context(TestClient(TestServer(app))))
    return nodes


def assert_each_effect_delivered_once(nodes: Cluster) -> list[tuple[str, str, dict]]:
    effects = nodes.effects()
    assert effects and {status for _, status, _ in effects} == {"done"}, Counter(s for _, s, _ in effects)
    # Every message that reached the connector is one effect's result: none was sent by both instances.
    sent = [result["activity_id"] for _, _, result in effects if "activity_id" in result]
    assert sent and len(sent) == len(set(sent)) == len(nodes.connector.delivered)
    # An email delivered twice finds its own file and says so.
    assert not [i for i, _, result in effects if result.get("duplicate")]
    return effects


async def test_filed_on_one_instance_advanced_on_the_other_one_transition_per_conflict(tmp_path):
    async with AsyncExitStack() as stack:
        nodes = await cluster(tmp_path, stack)
        filed = await nodes.click(0, "requester", Verb.INTAKE_SUBMIT, {
            Inputs.TITLE: "Video institucional", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2027-03-15"})
        assert filed["type"] == CARD and "2026-0001" in json.dumps(filed["value"], ensure_ascii=False)

        advanced = await nodes.click(1, "coordinator", Verb.STEP_COMPLETE, {
            "number": "2026-0001", "version": 1, "step": "PRE-01", **inputs_for("PRE-01", "2026-0001")})
        assert advanced["type"] == CARD
        for components in nodes.components:  # each instance reads it from the store, not from its memory
            request = await components.store.get("2026-0001")
            assert (request.version, request.step_id) == (2, "PRE-02")

        # Press completes PRE-02 while the coordinator puts it on hold, each click (and Teams' retries of it)
        # landing on both instances at once.
        data = {"number": "2026-0001", "version": 2, "step": "PRE-02"}
        clicks = [nodes.click(i % 2, "press", Verb.STEP_COMPLETE, {**data, **inputs_for("PRE-02", "2026-0001")})
                  if i % 4 < 2 else
                  nodes.click(i % 2, "coordinator", Verb.REQUEST_HOLD, {**data, Inputs.HOLD_REASON: f"Pausa {i}"})
                  for i in range(12)]
        answers = await asyncio.gather(*clicks)
        assert all(a["statusCode"] == 200 and a["type"] == CARD for a in answers)
        winners = [a for a in answers if "desactualizada" not in json.dumps(a["value"], ensure_ascii=False)]
        assert len(winners) == 1  # every other click, on either instance, was told the card was stale
        assert (await nodes.store.get("2026-0001")).version == 3
        history = await nodes.store.history("2026-0001")
        assert [h.version for h in history].count(3) == 1

        await nodes.drain()
        assert_each_effect_delivered_once(nodes)


async def test_reminders_run_on_both_instances_at_once_reach_each_person_once(tmp_path):
    async def overdue_requests(store):
        for number, step in (("2026-0001", "PRE-14"), ("2026-0002", "PRE-10"), ("2026-0003", "PRE-14")):
            await drive(store, number, step)
        store.conn.execute("UPDATE effects SET status = 'done'")  # what filing sent is not under test here

    async with AsyncExitStack() as stack:
        # Twelve days later the directors still sit on their approvals; both schedules ran at start-up already.
        nodes = await cluster(tmp_path, stack, now=morning(16), before_start=overdue_requests)
        runs = await asyncio.gather(*(c.reminders.run_once() for c in nodes.components for _ in range(3)))
        added = [i for run in runs for i in run.added]
        assert len(added) == len(set(added))  # six more runs at once (and the start-up ones): each stored once
        reminders = [i for i, _, _ in nodes.effects() if i.startswith(("reminder/", "digest/"))]
        assert set(added) <= set(reminders) and set(reminders) == {e.id for e in runs[0].effects}
        assert any(i.startswith("reminder/2026-0001/PRE-14/") for i in reminders)
        assert any(i.startswith("digest/") for i in reminders)

        await nodes.drain()
        effects = assert_each_effect_delivered_once(nodes)
        reminder_messages = [r["activity_id"] for i, _, r in effects
                             if i.startswith(("reminder/", "digest/")) and "activity_id" in r]
        assert reminder_messages  # the reminders did reach people, each exactly once (checked above)
