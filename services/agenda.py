"""The coordinator's agenda: open requests by phase, the indicators, and the tracking table as an Excel file."""

from __future__ import annotations

import asyncio
import logging

import dataclasses
import io
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from procedure import engine
from procedure.calendar import working_days_between
from procedure.deadlines import StepDays, StepState, lima_date, status_of
from procedure.model import END, Phase, Procedure
from procedure.request import HistoryEntry, Request, Status
from procedure.roles import Role
from services.ports import Directory, HistoryMark, RequestRow, RequestStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Names:
    """Display names the agenda needs: people by id, and each area's director."""

    people: Mapping[str, str] = field(default_factory=dict)
    directors: Mapping[str, str] = field(default_factory=dict)  # area code → director's name


async def load_names(directory: Directory) -> Names:
    people: dict[str, str] = {}
    for role in Role:
        if role in (Role.OCOIM_TEAM, Role.DIRECTOR):
            continue
        for person in await directory.people_with_role(role.value):
            people[person.id] = person.name
    directors: dict[str, str] = {}
    for area in await directory.areas():
        director = await directory.director_of(area)
        if director is not None:
            directors[area] = director.name
            people[director.id] = director.name
    return Names(people, directors)


def owner_label(proc: Procedure, request: Request, names: Names | None = None) -> str:
    """Who has the current step, in Spanish: the named person, the area's director, or the role."""
    names = names or Names()
    if not request.is_open or request.step_id == END:
        return ""
    role = engine.responsible_role(proc, request)
    if role is None:
        return ""
    if role in request.assignees:
        pid = request.assignees[role]
        return names.people.get(pid, pid)
    if role == Role.DIRECTOR.value:
        name = names.directors.get(request.area)
        return f"{name} (Director(a) de {request.area})" if name else f"Director(a) de {request.area}"
    return Role(role).label


def status_label(request: Request, today: date, deadlines: StepDays) -> str:
    if request.status in (Status.DELIVERED, Status.CANCELLED):
        return request.status_label
    return status_of(request, today, deadlines).label


# ── The agenda ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class AgendaRow:
    number: str
    title: str
    area: str
    step_id: str
    step_name: str
    owner: str
    deadline: date | None
    state: StepState
    status: str  # Spanish label
    days_overdue: int = 0


def agenda_rows(proc: Procedure, requests: Iterable[Request], today: date, deadlines: StepDays, *,
                names: Names | None = None, area: str | None = None, piece_type: str | None = None,
                owner: str | None = None) -> dict[Phase, list[AgendaRow]]:
    """Open requests grouped by the phase of their current step, most overdue first.

    `owner` filters by who has the step: a person id (named assignee or the area's director, given
    `names`) or a role name (COORDINATOR, DIRECTOR…).
    """
    names = names or Names()
    grouped: dict[Phase, list[AgendaRow]] = {phase: [] for phase in Phase}
    for request in requests:
        if not request.is_open or request.step_id not in proc:
            continue
        if area and request.area != area:
            continue
        c = request.classification
        if piece_type and (c is None or c.piece_type.value != piece_type):
            continue
        if owner and not _owned_by(proc, request, owner, names):
            continue
        status = status_of(request, today, deadlines)
        step = proc[request.step_id]
        grouped[step.phase].append(AgendaRow(
            number=request.number, title=request.title, area=request.area, step_id=step.id, step_name=step.name,
            owner=owner_label(proc, request, names), deadline=status.deadline, state=status.state,
            status=status.label, days_overdue=status.days_overdue,
        ))
    for rows in grouped.values():
        rows.sort(key=lambda r: (-r.days_overdue, r.deadline or date.max, r.number))
    return grouped


def _owned_by(proc: Procedure, request: Request, owner: str, names: Names) -> bool:
    role = engine.responsible_role(proc, request)
    if owner == role or request.assignees.get(role or "") == owner:
        return True
    if role == Role.DIRECTOR.value:
        director_name = names.directors.get(request.area)
        return director_name is not None and names.people.get(owner) == director_name
    return False


# ── Indicators ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Indicators:
    """The procedure's indicators for a date range (both ends included, Lima days)."""

    start: date
    end: date
    # Phase code → average working days spent in the phase, for phase spans that ended in the range.
    cycle_days: dict[str, float | None]
    cycle_samples: dict[str, int]
    # Review step → average rounds it took to give conformity, for conformities given in the range.
    rounds: dict[str, float | None]
    delivered: int  # requests delivered in the range
    on_time: int  # of those, delivered on or before the requested date
    overdue: int  # open, active requests whose current step is overdue today

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.delivered if self.delivered else None


def _when(at: datetime | str) -> datetime:
    return at if isinstance(at, datetime) else datetime.fromisoformat(at)


def _lima_day(at: datetime | str) -> date:
    # Stored times are Lima times: their date is the string's first ten characters, no parsing needed.
    if isinstance(at, str) and at.endswith("-05:00"):
        return date.fromisoformat(at[:10])
    return lima_date(_when(at))


def _raw_spans(proc: Procedure, history: Iterable[HistoryEntry | HistoryMark]) -> list[tuple[Phase, object, object]]:
    entries = sorted(history, key=lambda h: (h.version, h.seq))
    spans: list[tuple[Phase, object, object]] = []
    if not entries:
        return spans
    start = entries[0].at
    current: Phase | None = None
    last_at = None
    for entry in entries:
        step = proc.by_id.get(entry.step_id)
        if step is None:
            continue
        if current is None:
            current = step.phase
        elif step.phase is not current:
            spans.append((current, start, last_at))
            start, current = last_at, step.phase
        last_at = entry.at
        if entry.action in ("complete", "conformity") and any(r.to == END for r in step.routes):  # the end
            spans.append((current, start, entry.at))
            break
    return spans


def phase_spans(proc: Procedure, history: Iterable[HistoryEntry | HistoryMark]) -> list[tuple[Phase, datetime, datetime]]:
    """When the request entered and left each phase it finished.

    A phase ends at the last entry recorded on one of its steps before the first entry of a later phase
    (that action is what opened the next phase); the first phase starts at filing and the last ends at
    delivery. Holds are not subtracted: they are time the request spent in the phase.
    """
    return [(phase, _when(entered), _when(left)) for phase, entered, left in _raw_spans(proc, history)]


@dataclass(frozen=True)
class HistoryDigest:
    """What the indicators read from one request's history, independent of the period asked for."""

    spans: tuple[tuple[str, date, int], ...] = ()  # (phase code, Lima day it ended, working days in it)
    approvals: tuple[tuple[str, int, date], ...] = ()  # (review step, rounds it took, Lima day of conformity)


def digest_history(proc: Procedure, history: Iterable[HistoryEntry | HistoryMark]) -> HistoryDigest:
    history = list(history)
    spans = tuple((phase.value, _lima_day(left), working_days_between(_lima_day(entered), _lima_day(left)))
                  for phase, entered, left in _raw_spans(proc, history))
    approvals = tuple((entry.step_id, entry.round or 1, _lima_day(entry.at)) for entry in history
                      if entry.action == "review_approved")
    return HistoryDigest(spans, approvals)


class DigestCache:
    """History digests by (number, version): a version's history never changes, so a digest never goes
    stale; only requests that moved since the last look have their history read again. A few hundred
    bytes each."""

    def __init__(self, proc: Procedure, size: int = 100_000, chunk: int = 500):
        self.proc = proc
        self.size = size
        self.chunk = chunk
        self._digests: OrderedDict[tuple[str, int], HistoryDigest] = OrderedDict()

    async def digests(self, store: RequestStore, rows: Iterable[Request | RequestRow]) -> dict[str, HistoryDigest]:
        rows = list(rows)
        missing = [r.number for r in rows if (r.number, r.version) not in self._digests]
        fresh: dict[str, HistoryDigest] = {}
        # In chunks, so only a few hundred histories are held at once.
        for i in range(0, len(missing), self.chunk):
            for number, marks in (await store.history_marks(missing[i:i + self.chunk])).items():
                fresh[number] = digest_history(self.proc, marks)
            await asyncio.sleep(0)  # a long first read must not keep the bot from answering meanwhile
        found: dict[str, HistoryDigest] = {}
        for r in rows:
            key = (r.number, r.version)
            digest = self._digests.get(key)
            if digest is None:
                # Should the request move on between the two reads, this digest is kept under the older
                # version, which the next look no longer asks for.
                digest = self._digests[key] = fresh.get(r.number, HistoryDigest())
            else:
                self._digests.move_to_end(key)
            found[r.number] = digest
        while len(self._digests) > self.size:
            self._digests.popitem(last=False)
        return found


class PeriodIndicators:
    """The agenda's indicators for a period, computed in the background and kept for a few minutes.

    At 50,000 requests reading the history of those that moved in 90 days takes seconds; the agenda must
    answer in far less, and averages over 90 days barely move in five minutes. So a look never waits more
    than `first_wait` seconds: it gets the last figures (refreshed behind it when older than the ttl), or
    None while the first ones are computed. The steps overdue today are counted afresh on every look."""

    def __init__(self, proc: Procedure, *, ttl_seconds: float = 300.0, first_wait: float = 2.0,
                 clock=time.monotonic):
        self.proc = proc
        self.digests = DigestCache(proc)
        self.ttl_seconds = ttl_seconds
        self.first_wait = first_wait
        self.clock = clock
        self._kept: dict[tuple[date, date], tuple[float, Indicators]] = {}
        self._refresh: asyncio.Task | None = None

    async def indicators(self, store: RequestStore, open_requests: list[Request], start: date, end: date,
                         today: date, deadlines: StepDays) -> Indicators | None:
        kept = self._kept.get((start, end))
        if (kept is None or self.clock() - kept[0] > self.ttl_seconds) and (
                self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._compute(store, start, end, today, deadlines))
        if kept is None:
            try:
                await asyncio.wait_for(asyncio.shield(self._refresh), timeout=self.first_wait)
            except asyncio.TimeoutError:
                return None
            kept = self._kept.get((start, end))
            if kept is None:
                return None
        overdue = sum(1 for r in open_requests if r.status is Status.ACTIVE
                      and status_of(r, today, deadlines).state is StepState.OVERDUE)
        return dataclasses.replace(kept[1], overdue=overdue)

    async def _compute(self, store: RequestStore, start: date, end: date, today: date, deadlines: StepDays) -> None:
        from services.ports import RequestQuery

        try:
            # Only requests that moved in the period can have history in it; read as rows, not requests.
            recent = [r for r in await store.rows(RequestQuery(changed_since=start, limit=100_000))
                      if r.is_open or (r.delivered_at and r.delivered_at.date() >= start)]
            digests = await self.digests.digests(store, recent)
            figures = indicators_from(self.proc, recent, digests, [], start, end, today, deadlines)
            self._kept = {(start, end): (self.clock(), figures)}
        except Exception:  # the agenda keeps showing the last figures; the next look tries again
            log.exception("computing the agenda's indicators failed")


def indicators(proc: Procedure, requests: Iterable[Request], histories: Mapping[str, list[HistoryEntry]],
               start: date, end: date, today: date, deadlines: StepDays) -> Indicators:
    requests = list(requests)
    digests = {r.number: digest_history(proc, histories.get(r.number, [])) for r in requests}
    return indicators_from(proc, requests, digests, [r for r in requests if r.is_open], start, end, today,
                           deadlines)


def indicators_from(proc: Procedure, requests: Iterable[Request | RequestRow], digests: Mapping[str, HistoryDigest],
                    open_requests: Iterable[Request], start: date, end: date, today: date,
                    deadlines: StepDays) -> Indicators:
    """The indicators from history digests: `requests` (whole or as rows) give the deliveries,
    `open_requests` the steps overdue today."""
    spans: dict[str, list[int]] = {phase.value: [] for phase in Phase}
    rounds: dict[str, list[int]] = {review.id: [] for review in proc.reviews}
    delivered = on_time = 0
    for request in requests:
        digest = digests.get(request.number)
        if digest is not None:
            for phase, left, days in digest.spans:
                if start <= left <= end:
                    spans[phase].append(days)
            for step_id, taken, day in digest.approvals:
                if step_id in rounds and start <= day <= end:
                    rounds[step_id].append(taken)
        if request.status is Status.DELIVERED and request.delivered_at:
            day = lima_date(request.delivered_at)
            if start <= day <= end:
                delivered += 1
                on_time += day <= request.due_date
    overdue = sum(1 for r in open_requests if r.status is Status.ACTIVE
                  and status_of(r, today, deadlines).state is StepState.OVERDUE)
    return Indicators(
        start=start, end=end,
        cycle_days={k: (sum(v) / len(v) if v else None) for k, v in spans.items()},
        cycle_samples={k: len(v) for k, v in spans.items()},
        rounds={k: (sum(v) / len(v) if v else None) for k, v in rounds.items()},
        delivered=delivered, on_time=on_time, overdue=overdue,
    )


# ── The Excel export ────────────────────────────────────────────────────────────────────────

HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")


def tracking_headers(proc: Procedure) -> list[str]:
    return [
        "N° de solicitud", "Título", "Área usuaria", "Tipo", "Tema", "Fase", "Paso", "Responsable",
        "Fecha de solicitud", "Fecha de entrega prevista", "Plazo de producción", "Fecha de entrega real",
        *(f"Rondas {review.id}" for review in proc.reviews),
        "Días en el paso actual", "Estado",
    ]


def tracking_row(proc: Procedure, request: Request, today: date, deadlines: StepDays,
                 names: Names | None = None) -> list:
    """One request as a row of the tracking table, in the order of `tracking_headers`."""
    c = request.classification
    step = proc.by_id.get(request.step_id)
    if step is not None:
        phase, step_text = step.phase.label, f"{step.id} {step.name}"
    else:
        phase, step_text = "", "Finalizada" if request.step_id == END else request.step_id
    days_in_step = (working_days_between(lima_date(request.step_opened_at), today)
                    if request.is_open and step is not None else None)
    return [
        request.number, request.title, request.area,
        c.piece_type.value if c else "", c.topic.label if c else "", phase, step_text,
        owner_label(proc, request, names),
        lima_date(request.filed_at), request.due_date, request.production_deadline,
        lima_date(request.delivered_at) if request.delivered_at else None,
        *(request.rounds(review.id) for review in proc.reviews),
        days_in_step, status_label(request, today, deadlines),
    ]


def export_tracking_xlsx(proc: Procedure, requests: Iterable[Request], histories: Mapping[str, list[HistoryEntry]],
                         today: date, deadlines: StepDays, *, names: Names | None = None,
                         start: date | None = None, end: date | None = None,
                         digests: Mapping[str, HistoryDigest] | None = None) -> bytes:
    """The tracking table ("Seguimiento") and the indicators ("Indicadores") as an .xlsx file.

    The indicators cover `start`..`end`; by default from the first filing to `today`. `digests`, when
    given, stand in for `histories`.
    """
    requests = sorted(requests, key=lambda r: r.number)
    wb = Workbook()
    sheet = wb.active
    sheet.title = "Seguimiento"
    headers = tracking_headers(proc)
    sheet.append(headers)
    for request in requests:
        sheet.append(tracking_row(proc, request, today, deadlines, names))
    _style_header(sheet, len(headers))
    widths = {"N° de solicitud": 14, "Título": 40, "Paso": 45, "Responsable": 34, "Estado": 22}
    for i, header in enumerate(headers, start=1):
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = widths.get(header, max(12, len(header) + 2))
        if header.startswith("Fecha") or header == "Plazo de producción":
            for cell in sheet[letter][1:]:
                cell.number_format = "DD/MM/YYYY"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(1, len(requests) + 1)}"

    start = start or min((lima_date(r.filed_at) for r in requests), default=today)
    end = end or today
    if digests is None:
        ind = indicators(proc, requests, histories, start, end, today, deadlines)
    else:
        ind = indicators_from(proc, requests, digests, [r for r in requests if r.is_open], start, end, today,
                              deadlines)
    _indicators_sheet(wb.create_sheet("Indicadores"), proc, ind)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def indicator_rows(proc: Procedure, ind: Indicators) -> list[tuple[str, object]]:
    """The indicators as (Spanish label, value) pairs, shared by the export and the agenda card."""
    rows: list[tuple[str, object]] = [
        ("Periodo", f"{ind.start:%d/%m/%Y} – {ind.end:%d/%m/%Y}"),
    ]
    for phase in Phase:
        value = ind.cycle_days[phase.value]
        rows.append((f"Tiempo de ciclo promedio, {phase.label} (días hábiles)",
                     round(value, 1) if value is not None else "Sin datos"))
    for review in proc.reviews:
        value = ind.rounds[review.id]
        rows.append((f"Rondas promedio hasta la conformidad, {review.id}",
                     round(value, 2) if value is not None else "Sin datos"))
    rows += [
        ("Solicitudes entregadas", ind.delivered),
        ("Entregadas a tiempo", ind.on_time),
        ("Entrega a tiempo (%)", round(100 * ind.on_time_rate, 1) if ind.on_time_rate is not None else "Sin datos"),
        ("Solicitudes con el paso vencido (hoy)", ind.overdue),
    ]
    return rows


def _indicators_sheet(sheet, proc: Procedure, ind: Indicators) -> None:
    sheet.append(["Indicador", "Valor"])
    for label, value in indicator_rows(proc, ind):
        sheet.append([label, value])
    _style_header(sheet, 2)
    sheet.column_dimensions["A"].width = 60
    sheet.column_dimensions["B"].width = 26
    sheet.freeze_panes = "A2"


def _style_header(sheet, columns: int) -> None:
    for cell in sheet[1][:columns]:
        cell.fill = HEADER_FILL
        cell.font = HEADER_FONT
        cell.alignment = Alignment(vertical="center", wrap_text=True)
