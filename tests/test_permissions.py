"""The start-up permission check and /readyz, against FakeGraph (Graph backend) and on SQLite."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from app import build, create_web_app
from config.settings import Settings
from deploy.sharepoint import provision
from graph.client import build_graph_client, close_graph_client
from graph.permissions import NOT_PROBED, check_permissions
from graph.schema import LISTS
from ops import readiness
from tests.graph_fixtures import graph_settings
from tests.graph_server import FakeGraph

ROOT = Path(__file__).resolve().parents[1]
MAILBOX = "audiovisual@proinversion.gob.pe"
SITE_ROUTES = ("site.get", "lists.list", "list.get", "items.list", "driveItem.get")


@pytest.fixture
async def graph(tmp_path):
    """A provisioned site, a document library, the office mailbox and two role groups with one member each."""
    async with FakeGraph() as fake:
        fake.add_group("grupo-coordinacion", [{"id": "u-1", "displayName": "Rosa", "mail": "rosa@proinversion.gob.pe"}])
        fake.add_group("grupo-prensa", [{"id": "u-2", "displayName": "Luis", "mail": "luis@proinversion.gob.pe"}])
        fake.settings = graph_settings(fake, backend="graph", local_mode=True, app_id="", data_dir=tmp_path,
                                       people_file=ROOT / "config" / "people.example.yaml",
                                       graph_role_groups={"COORDINATOR": "grupo-coordinacion",
                                                          "PRESS": "grupo-prensa"})
        setup = build_graph_client(fake.settings)
        await provision(setup, fake.settings.sharepoint_site_id)
        await close_graph_client(setup)
        yield fake


async def problems_of(graph: FakeGraph, **overrides):
    settings = graph.settings.model_copy(update=overrides) if overrides else graph.settings
    client = build_graph_client(settings, retry_base_delay=0)
    try:
        return await check_permissions(client, settings)
    finally:
        await close_graph_client(client)


async def test_everything_granted_means_no_problem_and_one_cheap_read_per_thing_used(graph):
    before = len(graph.calls)
    assert await problems_of(graph) == []
    probed = [c.route for c in graph.calls[before:]]
    assert all(c.method == "GET" for c in graph.calls[before:])  # nothing written, nothing sent
    assert probed.count("items.list") == len(LISTS)
    assert {"site.get", "driveItem.get", "calendar.get", "groups.members"} <= set(probed)
    assert probed.count("groups.members") == 2


async def test_no_grant_on_the_site_names_sites_selected_and_the_step_that_grants_it(graph):
    graph.deny(*SITE_ROUTES)
    problems = await problems_of(graph)
    site = [p for p in problems if p.permission == "Sites.Selected"]
    assert [p.check for p in site] == ["sitio", "biblioteca"]  # the lists are not probed once the site is refused
    assert "Sites.Selected" in site[0].message and "paso 3" in site[0].message and site[0].status == 403
    assert not [p for p in problems if p.permission not in ("Sites.Selected",)]


async def test_a_list_not_provisioned_says_how_to_create_it(graph):
    graph.lists.pop(graph.get_list("Efectos").id)
    (problem,) = await problems_of(graph)
    assert problem.check == "lista:Efectos" and problem.status == 404
    assert "python -m deploy.sharepoint provision" in problem.message


async def test_calendar_outside_the_exchange_scope_names_the_mailbox_and_the_rbac_role(graph):
    graph.deny("calendar.get")
    (problem,) = await problems_of(graph)
    assert problem.permission == "Calendars.ReadWrite"
    assert MAILBOX in problem.message and "Application Calendars.ReadWrite" in problem.message
    assert "paso 5" in problem.message


async def test_missing_group_member_read_is_said_once_not_once_per_group(graph):
    graph.deny("groups.members")
    (problem,) = await problems_of(graph)
    assert problem.permission == "GroupMember.Read.All" and "consentimiento de administrador" in problem.message


async def test_members_with_their_id_only_mean_user_readbasic_all_is_missing(graph):
    graph.member_details = False
    (problem,) = await problems_of(graph)
    assert problem.permission == "User.ReadBasic.All"


async def test_a_group_that_does_not_exist_is_named_with_its_role(graph):
    (problem,) = await problems_of(graph, graph_role_groups={"COORDINATOR": "grupo-coordinacion",
                                                             "DESIGNER": "grupo-que-no-existe"})
    assert problem.check == "grupo:DESIGNER" and "grupo-que-no-existe" in problem.message


async def test_a_refused_token_is_one_problem_pointing_at_the_app_registration(graph):
    (problem,) = await problems_of(graph, graph_static_token=SecretStr("otro-token"))
    assert problem.status == 401 and "GRAPH_CLIENT_ID" in problem.message


async def test_graph_not_answering_is_reported_as_unreachable(graph, unused_tcp_port):
    (problem,) = await problems_of(graph, graph_base_url=f"http://127.0.0.1:{unused_tcp_port}/v1.0")
    assert problem.graph_unreachable and "no respondió" in problem.message


# ── /readyz ────────────────────────────────────────────────────────────────────────────────

async def readyz(settings: Settings):
    components = build(settings)
    async with TestClient(TestServer(create_web_app(components, schedule_reminders=False,
                                                    dispatch_effects=False))) as client:
        response = await client.get("/readyz")
        return response.status, await response.json(), components


async def test_readyz_on_sqlite_is_ready_when_the_store_answers(tmp_path):
    settings = Settings(_env_file=None, local_mode=True, app_id="", data_dir=tmp_path)
    status, body, _ = await readyz(settings)
    assert status == 200 and body == {"status": "ready", "checks": {"almacen": {"ok": True}}}


async def test_readyz_is_503_in_spanish_when_the_store_does_not_answer(tmp_path):
    components = build(Settings(_env_file=None, local_mode=True, app_id="", data_dir=tmp_path))

    async def broken(person_id):
        raise OSError("disk I/O error")

    components.store.get_reference = broken
    async with TestClient(TestServer(create_web_app(components, schedule_reminders=False,
                                                    dispatch_effects=False))) as client:
        response = await client.get("/readyz")
        body = await response.json()
        alive = await client.get("/healthz")
    assert alive.status == 200  # alive all the same: the platform must not restart it for this
    assert response.status == 503 and body["status"] == "not_ready"
    assert body["checks"]["almacen"] == {"ok": False, "detalle": "El almacén de solicitudes no responde (OSError)."}


async def test_readyz_on_graph_is_ready_with_every_permission(graph):
    status, body, _ = await readyz(graph.settings)
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["almacen"] == {"ok": True} and body["checks"]["graph"] == {"ok": True}
    assert body["checks"]["permisos"]["ok"] is True and body["checks"]["permisos"]["problemas"] == []
    assert body["checks"]["permisos"]["sin_comprobar"] == NOT_PROBED  # says what it could not probe


async def test_readyz_is_503_naming_the_missing_permission_and_the_bot_still_starts(graph, caplog, monkeypatch):
    graph.deny("calendar.get")
    caplog.set_level(logging.ERROR, logger="ops.readiness")
    settings = graph.settings
    components = build(settings)
    monkeypatch.setattr(readiness, "RECHECK_SECONDS", 0.0)
    async with TestClient(TestServer(create_web_app(components, schedule_reminders=False,
                                                    dispatch_effects=False))) as client:
        assert (await client.get("/healthz")).status == 200  # alive: the bot answers Teams all the same
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503 and body["status"] == "not_ready"
        assert body["checks"]["almacen"]["ok"] and body["checks"]["graph"]["ok"]
        (problem,) = body["checks"]["permisos"]["problemas"]
        assert problem["permiso"] == "Calendars.ReadWrite" and "Application Calendars.ReadWrite" in problem["detalle"]
        # The start-up check logged it as an error, in the words the administrator needs.
        assert any(r.levelno == logging.ERROR and "Application Calendars.ReadWrite" in r.getMessage()
                   for r in caplog.records)

        graph.allow()  # the administrator fixes the grant: ready again without a restart
        response = await client.get("/readyz")
        assert response.status == 200, await response.json()


async def test_readyz_with_the_site_refused_names_sites_selected(graph):
    graph.deny(*SITE_ROUTES)
    status, body, _ = await readyz(graph.settings)
    assert status == 503
    # The store's own probe is refused too: the store is not ready either.
    assert body["checks"]["almacen"]["ok"] is False
    assert {p["permiso"] for p in body["checks"]["permisos"]["problemas"]} == {"Sites.Selected"}
    assert any("paso 3" in p["detalle"] for p in body["checks"]["permisos"]["problemas"])
