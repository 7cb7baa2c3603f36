"""The SharePoint request store against FakeGraph: the store contract, plus outbox draining, Graph call counts and provisioning."""

from __future__ import annotations

import json

import pytest

from deploy.sharepoint import provision
from graph.client import build_graph_client, close_graph_client
from graph.schema import LISTS
from graph.sharepoint_store import SharePointRequestStore
from services.ports import ConcurrencyConflict, RequestQuery
from tests.graph_fixtures import fake_graph, graph_calls, graph_client, graph_settings  # noqa: F401  (fixtures)
from tests.store_contract import NOW, REQUESTER, StoreContract, coordinator, edit, file_into, save, step_forward
from procedure.engine import Action

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # msgraph-sdk warns on import


@pytest.fixture
async def sp_store(fake_graph, graph_client):
    await provision(graph_client, fake_graph.site_id)
    store = SharePointRequestStore(graph_client, fake_graph.site_id)
    yield store
    await store.close()


class TestSharePointStore(StoreContract):
    @pytest.fixture
    async def store(self, sp_store):
        return sp_store


# ── Graph calls on the hot path ──


async def test_a_card_click_costs_one_read_and_one_write(sp_store, graph_calls):
    filed = await file_into(sp_store)
    graph_calls.reset()

    request = await sp_store.get(filed.request.number)
    await save(sp_store, request, step_forward(request))

    assert graph_calls.total == 2
    assert graph_calls.by_route["GET /v1.0/sites/{id}/lists/Solicitudes/items"] == 1
    assert graph_calls.by_route["PATCH /v1.0/sites/{id}/lists/Solicitudes/items/{id}/fields"] == 1


async def test_a_second_transition_by_the_same_instance_needs_no_new_read(sp_store, graph_calls):
    request = (await file_into(sp_store)).request
    request = await save(sp_store, request, step_forward(request))
    graph_calls.reset()
    await save(sp_store, request, edit(request, "Otro propósito"))
    assert graph_calls.total == 1


# ── the outbox ──


async def test_a_transition_is_one_item_update_and_its_effects_wait_on_the_item(sp_store, fake_graph):
    filed = await file_into(sp_store)
    outcome = step_forward(filed.request)
    await save(sp_store, filed.request, outcome)

    item = next(iter(fake_graph.get_list("Solicitudes").items.values()))
    pending = json.loads(item.fields["Pendientes"])
    assert [e["effect"]["id"] for e in pending["effects"]] == [e.id for e in filed.effects + outcome.effects]
    assert item.fields["TieneEfectos"] is True
    assert fake_graph.get_list("Efectos").items == {}

    due = await sp_store.due_effects(NOW)  # the dispatcher drains the outbox first
    assert [r.effect for r in due] == filed.effects + outcome.effects
    assert item.fields["Pendientes"] == "" and item.fields["TieneEfectos"] is False
    assert len(fake_graph.get_list("Historial").items) == len(filed.history + outcome.history)


async def test_a_crash_after_creating_some_outbox_items_loses_nothing_and_duplicates_nothing(sp_store, fake_graph,
                                                                                          monkeypatch):
    filed = await file_into(sp_store)
    outcome = step_forward(filed.request)
    await save(sp_store, filed.request, outcome)
    # The drain created the effects and history, then the process died before clearing the outbox.
    real_patch = sp_store._patch

    async def crash_on_clear(key, item_id, fields, etag):
        if key == "requests" and fields.get("Pendientes") == "":
            raise SystemExit("crash")
        return await real_patch(key, item_id, fields, etag)

    monkeypatch.setattr(sp_store, "_patch", crash_on_clear)
    with pytest.raises(SystemExit):
        await sp_store.due_effects(NOW)
    monkeypatch.undo()
    assert len(fake_graph.get_list("Efectos").items) == len(filed.effects + outcome.effects)
    assert json.loads(next(iter(fake_graph.get_list("Solicitudes").items.values())).fields["Pendientes"])["effects"]

    due = await sp_store.due_effects(NOW)
    assert [r.effect for r in due] == filed.effects + outcome.effects
    assert len(fake_graph.get_list("Efectos").items) == len(filed.effects + outcome.effects)
    assert await sp_store.history(filed.request.number) == filed.history + outcome.history
    assert len(fake_graph.get_list("Historial").items) == len(filed.history + outcome.history)


async def test_history_includes_entries_still_in_the_outbox_in_one_call(sp_store, graph_calls):
    filed = await file_into(sp_store)
    await sp_store.due_effects(NOW)  # the filing's entries move to Historial
    outcome = step_forward(filed.request)
    await save(sp_store, filed.request, outcome)  # these stay in the outbox
    graph_calls.reset()
    assert await sp_store.history(filed.request.number) == filed.history + outcome.history
    assert graph_calls.total == 1


async def test_a_save_after_the_outbox_was_drained_elsewhere_still_succeeds(sp_store, fake_graph, graph_client):
    filed = await file_into(sp_store)
    request = await sp_store.get(filed.request.number)
    other_instance = SharePointRequestStore(graph_client, fake_graph.site_id)
    await other_instance.due_effects(NOW)  # changes the item's eTag, not its version
    outcome = step_forward(request)
    await save(sp_store, request, outcome)
    assert await other_instance.get(request.number) == outcome.request
    assert [r.effect for r in await other_instance.due_effects(NOW)] == filed.effects + outcome.effects


async def test_a_save_applied_but_answered_503_is_not_reported_as_a_conflict(sp_store, fake_graph):
    filed = await file_into(sp_store)
    request = await sp_store.get(filed.request.number)
    outcome = step_forward(request)
    # Graph does the PATCH and answers 503; the SDK re-sends it and gets 412 (the eTag moved).
    fake_graph.fail_after_work(1, status=503, routes={"items.update"})
    await save(sp_store, request, outcome)
    assert await sp_store.get(request.number) == outcome.request
    assert await sp_store.history(request.number) == filed.history + outcome.history


async def test_a_stale_save_from_another_instance_conflicts(sp_store, fake_graph, graph_client):
    filed = await file_into(sp_store)
    other_instance = SharePointRequestStore(graph_client, fake_graph.site_id)
    request = await other_instance.get(filed.request.number)
    await save(sp_store, filed.request, step_forward(filed.request))
    with pytest.raises(ConcurrencyConflict):
        await save(other_instance, request, coordinator(request, Action.HOLD, reason="Esperando insumos"))


# ── large lists ──


async def test_queries_keep_working_past_the_list_view_threshold(sp_store, fake_graph):
    # FakeGraph's threshold is 10 items here: any non-indexed filter would now fail.
    filings = [await file_into(sp_store, title=f"Pieza {i}") for i in range(14)]
    numbers = [f.request.number for f in filings]
    assert len(fake_graph.get_list("Solicitudes").items) > 10
    found = await sp_store.find(RequestQuery(participant=REQUESTER.id))
    assert [r.number for r in found] == numbers
    assert [r.number for r in await sp_store.find(RequestQuery(open_only=True, limit=12))] == numbers[:12]
    assert [r.effect for r in await sp_store.due_effects(NOW, limit=1000)] == [e for f in filings for e in f.effects]
    for call in fake_graph.calls:
        assert "prefer" not in call.headers or "HonorNonIndexed" not in call.headers["prefer"]


# ── provisioning ──


async def test_provisioning_twice_changes_nothing_the_second_time(fake_graph, graph_client):
    first = await provision(graph_client, fake_graph.site_id)
    assert {f.name for f in first} == {spec.display for spec in LISTS}
    columns_before = {l.display_name: sorted(l.columns) for l in fake_graph.lists.values()}
    assert await provision(graph_client, fake_graph.site_id) == []
    assert {l.display_name: sorted(l.columns) for l in fake_graph.lists.values()} == columns_before
    requests = fake_graph.get_list("Solicitudes")
    assert requests.is_indexed("Numero") and requests.is_indexed("TieneEfectos")
    assert not requests.is_indexed("Datos")


async def test_check_reports_a_deleted_column_and_a_lost_index_without_changing_anything(fake_graph, graph_client):
    await provision(graph_client, fake_graph.site_id)
    del fake_graph.get_list("Efectos").columns["Orden"]
    fake_graph.get_list("Solicitudes").columns["Estado"].indexed = False

    drift = await provision(graph_client, fake_graph.site_id, check=True)
    assert [str(f) for f in drift] == ["Solicitudes: falta el índice en «Estado»", "Efectos: falta la columna «Orden»"]
    assert "Orden" not in fake_graph.get_list("Efectos").columns

    fixed = await provision(graph_client, fake_graph.site_id)
    assert [f.fixed for f in fixed] == [True, True]
    assert await provision(graph_client, fake_graph.site_id, check=True) == []


async def test_the_command_line_reports_drift_with_exit_code_1(fake_graph, monkeypatch, capsys):
    for name, value in {"GRAPH_BASE_URL": fake_graph.base_url, "GRAPH_STATIC_TOKEN": fake_graph.token,
                        "SHAREPOINT_SITE_ID": fake_graph.site_id, "OFFICE_MAILBOX": "audiovisual@proinversion.gob.pe",
                        "SHAREPOINT_DRIVE_ID": fake_graph.drive_id}.items():
        monkeypatch.setenv(name, value)
    import deploy.sharepoint as cli

    assert await cli._run(check=True) == 1
    assert "falta la lista «Solicitudes»" in capsys.readouterr().out
    assert await cli._run(check=False) == 0
    assert await cli._run(check=True) == 0
    assert "Sin diferencias" in capsys.readouterr().out
