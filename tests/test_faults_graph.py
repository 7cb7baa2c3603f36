"""Graph failing on a fifth of its calls (429, 503, 503 after the work, timeouts) during a burst of clicks: no transition lost or doubled, every effect delivered, no meeting twice.

The app runs in this process on the Graph backend (SharePoint lists, mail, calendar on FakeGraph) with
a dispatcher delivering effects during the burst, while FakeGraph (seeded) answers 20 % of the calls with one
of the faults. The client's timeout is cut to 0.75 s and its retry base delay to 0 so the test is quick;
the SDK still honours Retry-After (1 s). People click through four steps of each request over HTTP and
click again when a click fails, as a person would. Afterwards (faults off, dispatcher drained): every
step went through exactly once and every click answered with the updated card is in the store, the history
is complete, every effect is done, each meeting exists once (transactionId), and an email went out twice
only where sendMail itself did its work and then failed (503 after the work, or a timeout).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

import graph.client
from app import build, create_web_app
from bench import seed
from bench.graph_bench import drain_outboxes
from cards.verbs import Verb
from procedure.definition import PROCEDURE
from procedure.engine import responsible_role
from procedure.model import StepKind
from tests import activities
from tests.driving import NOW
from tests.fake_connector import FakeConnector
from tests.graph_fixtures import graph_settings
from tests.graph_server import FakeGraph, provisioned
from tests.test_bot_flow import IDS, ROLE_OF_STEP, inputs_for, user

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = ROOT / "config" / "people.example.yaml"
CARD = "application/vnd.microsoft.card.adaptive"
REQUESTS = 6
STEPS = ("PRE-10", "PRE-13", "PRE-14", "PRO-01")  # review, meeting, review (the director's), task with an email
CLIENT_TIMEOUT = 0.75
FAULTS = dict(throttle=0.06, unavailable=0.04, after_work=0.05, timeout=0.05)  # 20 % of the calls


class Office:
    def __init__(self, client: TestClient, connector: FakeConnector, graph: FakeGraph, components):
        self.client, self.connector, self.graph, self.components = client, connector, graph, components
        self.store = components.store

    async def click(self, who: str, verb: Verb, data: dict) -> tuple[int, dict | None]:
        activity = activities.card_action(verb.value, data, service_url=self.connector.service_url, user=user(who))
        activity["conversation"]["id"] = f"a:{who}"
        response = await self.client.post("/api/messages", json=activity)
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def seeded(store, directory, deadlines, service_url: str) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """REQUESTS requests at PRE-10, written through the store with their history; who acts at each step."""
    snapshots = await seed.walk(PROCEDURE, directory, deadlines.lead_time, requester_id=IDS["requester"],
                                area="DSI", filed_at=NOW, step_days=0.01)
    steps = {}
    for step_id in STEPS:
        request = seed.at_step(snapshots, step_id).request
        steps[step_id] = (request.version, ROLE_OF_STEP[responsible_role(PROCEDURE, request)])
    rows = [seed.renumbered(seed.at_step(snapshots, STEPS[0]), n) for n in seed.numbers(2026, 1, REQUESTS)]
    await asyncio.gather(*(store.create(r, h, []) for r, h in rows))
    await seed.save_references_async(store, list(IDS.values()), service_url)
    await drain_outboxes(store)
    return [r.number for r, _ in rows], steps


@pytest.fixture
async def office(tmp_path, monkeypatch):
    real = graph.client.build_graph_client

    def quick_client(settings, **kw):
        client = real(settings, retry_base_delay=0, **kw)
        client.request_adapter._http_client.timeout = httpx.Timeout(CLIENT_TIMEOUT)
        return client

    # app._graph_adapters imports build_graph_client when it runs: this is the client the app gets.
    monkeypatch.setattr(graph.client, "build_graph_client", quick_client)
    async with FakeGraph(seed=7) as fake:
        roles = await provisioned(fake, PEOPLE)
        settings = graph_settings(fake, backend="graph", local_mode=True, app_id="", data_dir=tmp_path, now=NOW,
                                  people_file=PEOPLE, graph_role_groups=roles, effect_lease_seconds=1)
        components = build(settings)
        components.dispatcher.base_delay = 0.0  # a failed attempt is due again at once
        components.dispatcher.max_attempts = 30  # a fifth of the calls failing for a while is not "give up"
        async with FakeConnector() as connector:
            numbers, steps = await seeded(components.store, components.directory, components.deadlines,
                                          connector.service_url)
            app = create_web_app(components, schedule_reminders=False, dispatch_effects=False)
            async with TestClient(TestServer(app)) as client:
                office = Office(client, connector, fake, components)
                office.numbers, office.steps = numbers, steps
                yield office
        await graph.client.close_graph_client(components.store.client)


def refreshed_version(answer: dict) -> int:
    return answer["value"]["refresh"]["action"]["data"]["version"]


async def walk(office: Office, number: str, accepted: list, failed_clicks: Counter) -> None:
    """Click through STEPS on one request; a failed click is clicked again (it may have landed anyway)."""
    version = office.steps[STEPS[0]][0]
    for step_id in STEPS:
        who = office.steps[step_id][1]
        kind = PROCEDURE[step_id].kind
        verb = Verb.REVIEW_APPROVE if kind is StepKind.REVIEW else Verb.STEP_COMPLETE
        data = {"number": number, "version": version, "step": step_id}
        if kind is not StepKind.REVIEW:
            data.update(inputs_for(step_id, number))
        for _ in range(30):
            status, answer = await office.click(who, verb, data)
            if status == 200 and answer and answer.get("statusCode") == 200 and answer.get("type") == CARD:
                shown = refreshed_version(answer)
                if "desactualizada" not in json.dumps(answer["value"], ensure_ascii=False):
                    assert shown == version + 1
                    accepted.append((number, step_id, version + 1))
                else:
                    assert shown == version + 1, "the only other writer is this click's own earlier attempt"
                version = shown
                break
            failed_clicks[status] += 1
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{number} {step_id}: every click failed")


async def dispatching(dispatcher, stop: asyncio.Event) -> None:
    """The app's dispatcher loop, but one that stops between two rounds when told (never mid-delivery)."""
    while not stop.is_set():
        try:
            delivered = await dispatcher.run_once()
        except Exception:  # noqa: BLE001 - a round broken by a fault is retried, as run_forever does
            delivered = 0
        if not delivered:
            await asyncio.sleep(0.05)


async def drained(office: Office) -> None:
    """Run the dispatcher until no effect is due and no outbox is left (leases run out on the test clock).

    due_effects counts an effect once (a twin item left by a re-sent create is never due)."""
    store, dispatcher, clock = office.store, office.components.dispatcher, office.components.clock
    for _ in range(100):
        clock.advance(seconds=2)  # past every lease taken while the faults were on
        await dispatcher.run_once()
        outboxes = await store._query("requests", "fields/TieneEfectos eq 1", top=1, limit=1)
        if not outboxes and not await store.due_effects(clock.now(), limit=1):
            return
    raise AssertionError("effects still pending")


async def test_a_burst_of_clicks_through_graph_faults_loses_nothing_and_sends_no_meeting_twice(office):
    fake = office.graph
    fake.fail_randomly(**FAULTS, retry_after=1, hang_seconds=2 * CLIENT_TIMEOUT)
    accepted: list[tuple[str, str, int]] = []
    failed_clicks: Counter = Counter()
    stop = asyncio.Event()
    worker = asyncio.create_task(dispatching(office.components.dispatcher, stop))
    await asyncio.gather(*(walk(office, n, accepted, failed_clicks) for n in office.numbers))
    # Then the same faults on the mail and calendar calls while the dispatcher sends the burst's emails and
    # meetings, the first two of them doing their work and answering 503 (the SDK sends them again).
    fake.fail_randomly(**FAULTS, retry_after=1, hang_seconds=2 * CLIENT_TIMEOUT, routes={"sendMail", "events.create"})
    fake.faults.fail_after_work_next = 2
    for _ in range(600):
        if len(fake.calls_to("sendMail")) >= REQUESTS and len(fake.calls_to("events.create")) >= REQUESTS:
            break
        await asyncio.sleep(0.05)
    fake.clear_faults()
    stop.set()
    await worker  # its last round ends; from here on one worker delivers, so a lease running out on the
    # test clock cannot let a second worker deliver what the first is still sending
    injected = fake.faults.injected
    # The faults did happen, of every kind, and some clicks failed because of them.
    assert all(injected[kind] for kind in FAULTS), injected
    assert injected["after_work sendMail"] + injected["after_work events.create"] >= 2, injected
    assert sum(failed_clicks.values()) > 0
    await drained(office)

    store = office.store
    start = office.steps[STEPS[0]][0]
    for number in office.numbers:
        # Every step went through once: the request stands after the last one, one version per step.
        request = await store.get(number)
        assert request.version == start + len(STEPS) and request.step_id == "PRO-02", number
        history = await store.history(number)
        assert sorted({h.version for h in history}) == list(range(1, request.version + 1)), number
        for offset, step_id in enumerate(STEPS, start=1):
            entries = [h for h in history if h.version == start + offset]  # sorted by seq
            assert entries and entries[0].step_id == step_id, (number, step_id)
    for number, step_id, version in accepted:  # every click answered with the updated card is in the store
        assert any(h.version == version and h.step_id == step_id for h in await store.history(number))

    effects = {}
    for item in sorted(fake.get_list("Efectos").items.values(), key=lambda i: i.id):
        state = json.loads(item.fields["Datos"])
        effects.setdefault(state["effect"]["id"], state)  # the lowest SharePoint ID is the effect
    assert effects and {s["status"] for s in effects.values()} == {"done"}, Counter(
        s["status"] for s in effects.values())
    kinds = Counter(s["effect"]["kind"] for s in effects.values())
    assert kinds["email"] >= REQUESTS and kinds["meeting"] == REQUESTS, kinds

    # Meetings: one event per meeting effect (Graph's transactionId returns the first event on a retry).
    events = fake.events["audiovisual@proinversion.gob.pe"]
    meeting_ids = {i for i, s in effects.items() if s["effect"]["kind"] == "meeting"}
    assert Counter(e["transactionId"] for e in events) == Counter(meeting_ids)

    # Emails: each email effect reached the mailbox; sendMail has no idempotency key, so a mail whose
    # sendMail did its work and then answered 503 (the SDK re-sends it) or timed out (the dispatcher
    # re-sends it) can go out once more, and only then.
    sent = Counter(header["value"] for mail in fake.sent_mail
                   for header in mail["message"].get("internetMessageHeaders") or []
                   if header["name"] == "x-claqueta-effect")
    email_ids = {i for i, s in effects.items() if s["effect"]["kind"] == "email"}
    # An approval email finding the director already decided is skipped (it may have gone out on an attempt
    # whose completion was lost, hence "<=" on the right).
    delivered = {i for i in email_ids if not effects[i]["result"].get("skipped")}
    assert delivered and delivered <= set(sent) <= email_ids
    extra = sum(count - 1 for count in sent.values())
    assert extra <= injected["after_work sendMail"] + injected["timeout sendMail"], (sent, injected)
