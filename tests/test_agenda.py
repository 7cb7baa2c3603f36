"""The coordinator's agenda, the indicators and the Excel tracking table, on requests walked through a store."""

from __future__ import annotations

import asyncio

import io
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from config.deadlines import load_deadlines
from local.directory import YamlDirectory
from local.sqlite_store import SqliteRequestStore
from procedure.calendar import working_days_between
from procedure.definition import PROCEDURE
from procedure.engine import Action, Command, Intake, MeetingProposal, apply, file_request
from procedure.model import END, Phase, StepKind
from procedure.request import Status
from services.agenda import (
    agenda_rows,
    export_tracking_xlsx,
    indicators,
    load_names,
    phase_spans,
    tracking_headers,
)
from services.ports import RequestQuery
from tests.driving import AREAS, COORDINATOR, LEAD_TIMES, LIMA, REQUESTER, classification, full_command, who_can

ROOT = Path(__file__).resolve().parents[1]
DEADLINES = load_deadlines(ROOT / "config" / "deadlines.yaml")
START = datetime(2026, 12, 4, 10, 0, tzinfo=LIMA)


async def walk(store, number: str, *, due: date, until: str = END, adjust: dict[str, int] | None = None,
               c=None, area: str = "DE", title: str | None = None):
    """File a request and act on it one calendar day per action, saving each transition."""
    c = c or classification("B", services=("editing",))
    adjust = adjust or {}
    now = START
    intake = Intake(title=title or f"Video {number}", area=area, due_date=due, purpose="Difusión")
    outcome = file_request(PROCEDURE, intake, number, REQUESTER, now, AREAS, LEAD_TIMES)
    await store.create(outcome.request, outcome.history, outcome.effects)
    request = outcome.request
    while request.step_id != until:
        now += timedelta(days=1)
        step = PROCEDURE[request.step_id]
        if step.kind is StepKind.REVIEW:
            action = Action.REQUEST_CHANGES if request.rounds(step.id) < adjust.get(step.id, 0) else Action.APPROVE
        else:
            action = Action.COMPLETE
        extra = {"meeting": MeetingProposal(now + timedelta(hours=2))} if step.kind is StepKind.MEETING else {}
        command = full_command(request, action, c, **extra)
        outcome = apply(PROCEDURE, request, command, who_can(request, action), now, LEAD_TIMES)
        await store.save(outcome.request, request.version, outcome.history, outcome.effects)
        request = outcome.request
    return request


@pytest.fixture
async def store(tmp_path):
    s = SqliteRequestStore(tmp_path / "claqueta.db")
    yield s
    await s.close()


@pytest.fixture
async def walked(store):
    """Two delivered requests (one on time, one late), one waiting on its director, one cancelled."""
    on_time = await walk(store, "2026-0001", due=date(2027, 3, 1), adjust={"PRE-10": 1, "PRO-11": 2})
    late = await walk(store, "2026-0002", due=date(2026, 12, 22), area="DSI")
    waiting = await walk(store, "2026-0003", due=date(2027, 4, 30), until="PRE-14", adjust={"PRE-10": 2})
    cancelled = await walk(store, "2026-0004", due=date(2027, 5, 31), until="PRE-06")
    outcome = apply(PROCEDURE, cancelled, Command(Action.CANCEL, cancelled.version, reason="Ya no se necesita"),
                    COORDINATOR, START + timedelta(days=2))
    await store.save(outcome.request, cancelled.version, outcome.history, outcome.effects)
    requests = await store.find(RequestQuery())
    histories = {r.number: await store.history(r.number) for r in requests}
    return requests, histories


async def test_walked_requests_end_as_the_scenario_says(walked):
    requests, _ = walked
    by_number = {r.number: r for r in requests}
    assert by_number["2026-0001"].status is Status.DELIVERED
    assert by_number["2026-0001"].delivered_at.date() <= date(2027, 3, 1)
    assert by_number["2026-0002"].delivered_at.date() > date(2026, 12, 22)
    assert by_number["2026-0003"].step_id == "PRE-14"
    assert by_number["2026-0004"].status is Status.CANCELLED


async def test_export_opens_with_openpyxl_and_its_rows_match_the_store(walked, store):
    requests, histories = walked
    directory = YamlDirectory(ROOT / "config" / "people.example.yaml")
    names = await load_names(directory)
    today = date(2027, 1, 20)
    data = export_tracking_xlsx(PROCEDURE, requests, histories, today, DEADLINES, names=names)

    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Seguimiento", "Indicadores"]
    sheet = wb["Seguimiento"]
    rows = list(sheet.iter_rows(values_only=True))
    headers = list(rows[0])
    assert headers == tracking_headers(PROCEDURE)
    assert [h for h in headers if h.startswith("Rondas")] == [
        "Rondas PRE-10", "Rondas PRE-14", "Rondas PRO-07", "Rondas PRO-11", "Rondas POS-04", "Rondas TER-01"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(headers)).column_letter}5"
    assert sheet["A1"].font.bold

    col = {h: i for i, h in enumerate(headers)}
    body = rows[1:]
    stored = {r.number: r for r in await store.find(RequestQuery())}
    assert [row[col["N° de solicitud"]] for row in body] == sorted(stored)
    for row in body:
        request = stored[row[col["N° de solicitud"]]]
        assert row[col["Título"]] == request.title
        assert row[col["Área usuaria"]] == request.area
        for review in ("PRE-10", "PRE-14", "PRO-07", "PRO-11", "POS-04"):
            assert row[col[f"Rondas {review}"]] == request.rounds(review)
        assert row[col["Fecha de entrega prevista"]].date() == request.due_date
        assert row[col["Fecha de solicitud"]].date() == date(2026, 12, 4)
        if request.status is Status.DELIVERED:
            assert row[col["Fecha de entrega real"]].date() == request.delivered_at.astimezone(LIMA).date()
            assert row[col["Estado"]] == "Entregada"
            assert row[col["Plazo de producción"]].date() == date(2027, 2, 15)
            assert row[col["Días en el paso actual"]] is None
    waiting = next(row for row in body if row[col["N° de solicitud"]] == "2026-0003")
    assert waiting[col["Paso"]].startswith("PRE-14 ")
    assert waiting[col["Fase"]] == "Preproducción"
    assert waiting[col["Responsable"]] == "Jorge Gutiérrez Sánchez (Director(a) de DE)"
    assert waiting[col["Rondas PRE-10"]] == 3  # two adjustments, then conformity
    opened = stored["2026-0003"].step_opened_at.date()
    assert waiting[col["Días en el paso actual"]] == working_days_between(opened, today)
    assert waiting[col["Estado"]].startswith("Vencido (")
    assert next(row for row in body if row[col["N° de solicitud"]] == "2026-0004")[col["Estado"]] == "Cancelada"

    figures = dict(list(wb["Indicadores"].iter_rows(values_only=True))[1:])
    assert figures["Solicitudes entregadas"] == 2
    assert figures["Entrega a tiempo (%)"] == 50.0
    assert figures["Rondas promedio hasta la conformidad, PRE-10"] == 2.0  # rounds 2, 1 and 3 → 2
    assert figures["Solicitudes con el paso vencido (hoy)"] == 1


async def test_indicators_for_a_range(walked):
    requests, histories = walked
    today = date(2027, 1, 20)
    ind = indicators(PROCEDURE, requests, histories, date(2026, 12, 1), today, today, DEADLINES)
    assert (ind.delivered, ind.on_time, ind.on_time_rate) == (2, 1, 0.5)
    assert ind.rounds["PRE-10"] == pytest.approx((2 + 1 + 3) / 3)
    assert ind.rounds["PRO-11"] == pytest.approx((3 + 1) / 2)
    assert ind.rounds["PRE-14"] == 1.0
    assert ind.overdue == 1

    # Preproduction ends when the director's conformity on PRE-14 opens production.
    late = histories["2026-0002"]
    pre_end = next(h.at for h in late if h.step_id == "PRE-16")
    pre_days = working_days_between(date(2026, 12, 4), pre_end.astimezone(LIMA).date())
    assert phase_spans(PROCEDURE, late)[0][0] is Phase.PRE
    assert phase_spans(PROCEDURE, late)[0][2] == pre_end
    assert [p for p, _, _ in phase_spans(PROCEDURE, late)] == [Phase.PRE, Phase.PRO, Phase.POS]
    assert ind.cycle_samples == {"PRE": 2, "PRO": 2, "POS": 2, "TER": 0}
    first = working_days_between(
        date(2026, 12, 4), next(h.at for h in histories["2026-0001"] if h.step_id == "PRE-16").astimezone(LIMA).date())
    assert ind.cycle_days["PRE"] == pytest.approx((pre_days + first) / 2)
    assert all(ind.cycle_days[p] > 0 for p in ("PRE", "PRO", "POS"))

    before = indicators(PROCEDURE, requests, histories, date(2026, 12, 1), date(2026, 12, 10), today, DEADLINES)
    assert (before.delivered, before.on_time_rate, before.cycle_samples["POS"]) == (0, None, 0)
    assert before.rounds["PRO-11"] is None


async def test_agenda_groups_open_requests_by_phase_with_filters(store):
    await walk(store, "2026-0001", due=date(2027, 3, 1), until="PRE-14")
    await walk(store, "2026-0002", due=date(2027, 3, 1), until="PRO-07", area="DSI")
    await walk(store, "2026-0003", due=date(2027, 3, 1), until="POS-04")
    requests = await store.find(RequestQuery(open_only=True))
    names = await load_names(YamlDirectory(ROOT / "config" / "people.example.yaml"))
    today = date(2027, 1, 6)
    grouped = agenda_rows(PROCEDURE, requests, today, DEADLINES, names=names)
    assert {phase: [r.number for r in rows] for phase, rows in grouped.items()} == {
        Phase.PRE: ["2026-0001"], Phase.PRO: ["2026-0002"], Phase.POS: ["2026-0003"], Phase.TER: []}
    pre = grouped[Phase.PRE][0]
    assert (pre.step_id, pre.owner) == ("PRE-14", "Jorge Gutiérrez Sánchez (Director(a) de DE)")
    assert pre.status.startswith("Vencido")

    only_dsi = agenda_rows(PROCEDURE, requests, today, DEADLINES, names=names, area="DSI")
    assert [r.number for rows in only_dsi.values() for r in rows] == ["2026-0002"]
    director = "7d1e0a51-0000-4000-8000-000000000101"
    mine = agenda_rows(PROCEDURE, requests, today, DEADLINES, names=names, owner=director)
    assert [r.number for rows in mine.values() for r in rows] == ["2026-0001", "2026-0003"]
    by_role = agenda_rows(PROCEDURE, requests, today, DEADLINES, names=names, owner="OCOIM_TEAM")
    assert [r.number for rows in by_role.values() for r in rows] == ["2026-0002"]
    type_a = agenda_rows(PROCEDURE, requests, today, DEADLINES, names=names, piece_type="A")
    assert all(not rows for rows in type_a.values())


async def test_the_agenda_never_waits_long_for_its_indicators(store):
    """While slow figures are computed the agenda gets None (it says «en cálculo»), then the figures."""
    from services.agenda import PeriodIndicators

    await walk(store, "2026-0001", due=date(2027, 3, 1), until="POS-04")

    class SlowStore:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def history_marks(self, numbers):
            await asyncio.sleep(0.3)
            return await self.inner.history_marks(numbers)

    figures = PeriodIndicators(PROCEDURE, first_wait=0.05)
    slow = SlowStore(store)
    today = date(2027, 1, 6)
    assert await figures.indicators(slow, [], date(2026, 10, 1), today, today, DEADLINES) is None
    await asyncio.sleep(0.5)
    ready = await figures.indicators(slow, [], date(2026, 10, 1), today, today, DEADLINES)
    assert ready is not None and ready.cycle_samples["PRE"] == 1
