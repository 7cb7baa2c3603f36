"""The same procedure walk through the bot, on the Microsoft 365 backend (SharePoint lists, Graph mail and calendar)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from app import build, create_web_app
from deploy.sharepoint import provision
from graph.client import build_graph_client, close_graph_client
from tests.driving import NOW
from tests.fake_connector import FakeConnector
from tests.graph_fixtures import graph_settings
from tests.graph_server import FakeGraph
from tests.test_bot_flow import Chat, walk_type_a_with_adjustments

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = yaml.safe_load((ROOT / "config" / "people.example.yaml").read_text(encoding="utf-8"))


@pytest.fixture
async def graph_chat(tmp_path):
    async with FakeGraph() as graph:
        groups = {}
        for person in PEOPLE["people"]:
            for role in person.get("roles", []):
                groups.setdefault(role, []).append(
                    {"id": person["id"], "displayName": person["name"], "mail": person.get("email", "")})
        for role, members in groups.items():
            graph.add_group(f"grupo-{role.lower()}", members)
        directors = [{"id": a["director"], "displayName": p["name"], "mail": p.get("email", "")}
                     for a in PEOPLE["areas"].values() for p in PEOPLE["people"] if p["id"] == a["director"]]
        graph.add_group("grupo-director", directors)
        settings = graph_settings(graph, backend="graph", local_mode=True, app_id="", data_dir=tmp_path, now=NOW,
                                  people_file=ROOT / "config" / "people.example.yaml",
                                  graph_role_groups={role: f"grupo-{role.lower()}" for role in groups})
        setup = build_graph_client(settings)
        await provision(setup, settings.sharepoint_site_id)
        await close_graph_client(setup)
        components = build(settings)
        async with FakeConnector() as connector:
            app = create_web_app(components, schedule_reminders=False, dispatch_effects=False)
            async with TestClient(TestServer(app)) as client:
                chat = Chat(client, connector)
                chat.components = components
                chat.graph = graph
                yield chat


async def test_type_a_request_walked_through_the_bot_on_sharepoint_lists(graph_chat):
    await walk_type_a_with_adjustments(graph_chat)
    graph = graph_chat.graph
    assert graph.sent_mail, "the procedure's emails left from the office mailbox"
    assert all("[Solicitud 2026-0001]" in str(m) for m in graph.sent_mail)
    events = graph.events["audiovisual@proinversion.gob.pe"]
    assert sorted(e["subject"].split(" — ")[1][:6] for e in events) == ["PRE-05", "PRE-13", "PRO-10"]
    assert all(e["isOnlineMeeting"] and e["onlineMeeting"]["joinUrl"] for e in events)


async def test_an_approval_click_costs_one_read_and_one_write_on_sharepoint(graph_chat):
    """The hot path of a card click (DESIGN.md): the request is read once and written once."""
    from cards.verbs import Verb
    from tests.test_bot_flow import inputs_for

    for who in ("requester", "coordinator"):
        await graph_chat.say(who, "hola")
    await graph_chat.click("requester", Verb.INTAKE_SUBMIT.value, {
        "title": "Spot Semana de la Inversión", "area": "DSI", "due_date": "2027-03-15"})
    graph = graph_chat.graph
    before = len(graph.calls)
    answer = await graph_chat.click("coordinator", Verb.STEP_COMPLETE.value,
                                    {"number": "2026-0001", "version": 1, "step": "PRE-01",
                                     **inputs_for("PRE-01", "2026-0001")})
    assert answer["statusCode"] == 200 and "PRE-02" in str(answer["value"])
    made = [(c.method, c.route) for c in graph.calls[before:] if not c.in_batch]
    # (The effects are delivered later by the dispatcher, which this test does not run.)
    assert [m for m, _ in made] == ["GET", "PATCH"], made
