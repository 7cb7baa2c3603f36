"""Cards that list: a request's history, a person's requests or pending steps, and the agenda by phase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping, Sequence

from microsoft_teams.cards import CardElement, Choice, ChoiceSetInput, Column, ColumnSet, TextBlock

from cards.base import facts, actions, build, heading, para, section
from cards.intake import current_step_label
from cards.text import escape, escape_line, fmt_date, fmt_datetime, plain
from cards.verbs import CardData, Inputs, Verb, execute_action
from procedure.model import Procedure
from procedure.request import HistoryEntry, PieceType, Request

MAX_HISTORY = 30  # entries per history card: a long request stays far under the card size limit
MAX_ROWS = 12  # rows per list or agenda card: keeps the card far under the size limit


def history_card(request: Request, entries: Sequence[HistoryEntry]) -> dict[str, Any]:
    """`historial <n>`: every movement, newest first, with date and time in Lima (dd/mm/aaaa hh:mm)."""
    ordered = sorted(entries, key=lambda e: (e.at, e.version, e.seq), reverse=True)
    shown = ordered[:MAX_HISTORY]
    body: list[CardElement] = heading(f"Historial de la solicitud N° {escape_line(request.number)}",
                                      subtitle=escape_line(request.title, 200))
    if not shown:
        body.append(para("Aún no hay movimientos."))
    if len(ordered) > len(shown):
        body.append(para(f"Se muestran los últimos {len(shown)} de {len(ordered)} movimientos.", subtle=True))
    for entry in shown:
        meta = f"{fmt_datetime(entry.at)} · {escape_line(entry.step_id)}"
        if entry.round:
            meta += f" · ronda {entry.round}"
        body.append(TextBlock(text=meta, is_subtle=True, size="Small", wrap=True, spacing="Medium",
                              separator=True))
        body.append(TextBlock(text=escape_line(entry.summary, 400), wrap=True, spacing="None"))
        if entry.observation:
            body.append(TextBlock(text=escape(entry.observation[:600]), wrap=True, spacing="Small",
                                  is_subtle=True))
    card = CardData(number=request.number, version=request.version, step=request.step_id)
    body.append(actions(card.execute(Verb.REQUEST_SHOW, "Ver tarjeta actual")))
    return build(body, fallback_text=f"Historial de la solicitud N° {request.number}")


def request_list_card(title: str, requests: Sequence[Request], proc: Procedure,
                      empty_text: str = "No hay solicitudes.") -> dict[str, Any]:
    """`mis solicitudes` / `mis pendientes`: one row per request (number, title, step, due date) with "Abrir"."""
    body: list[CardElement] = heading(escape_line(title, 120))
    if not requests:
        body.append(para(escape(empty_text)))
    shown = list(requests)[:MAX_ROWS]
    if len(requests) > len(shown):
        body.append(para(f"Se muestran {len(shown)} de {len(requests)}.", subtle=True))
    for request in shown:
        card = CardData(number=request.number, version=request.version, step=request.step_id)
        status = "" if request.status.value == "active" else f" · {request.status_label}"
        body.append(ColumnSet(separator=True, spacing="Medium", columns=[
            Column(width="stretch", items=[
                TextBlock(text=f"**N° {escape_line(request.number)}** · {escape_line(request.title, 120)}",
                          wrap=True),
                TextBlock(text=f"{escape_line(current_step_label(proc, request), 140)}{status} · "
                               f"Entrega: {fmt_date(request.due_date)}", wrap=True, is_subtle=True, spacing="None"),
            ]),
            Column(width="auto", vertical_content_alignment="Center",
                   items=[actions(card.execute(Verb.REQUEST_SHOW, "Abrir"))]),
        ]))
    return build(body, fallback_text=plain(title, 120))


@dataclass(frozen=True)
class AgendaRow:
    """One request in the agenda; `owner` is who must act now (a name or a role)."""

    number: str
    version: int
    title: str
    step_id: str
    step_name: str
    owner: str
    deadline: date | None
    status: str  # Spanish, e.g. "En curso", "En espera", "Vencido"
    overdue: bool = False


def agenda_card(groups: Mapping[str, Sequence[AgendaRow]], *, areas: Mapping[str, str] | None = None,
                owners: Mapping[str, str] | None = None, selected: Mapping[str, str] | None = None,
                title: str = "Agenda de solicitudes", indicators: Sequence[tuple[str, Any]] = ()) -> dict[str, Any]:
    """`agenda`: requests in progress grouped by phase (label → rows), with area/type/owner filters,
    the office's indicators and the Excel export."""
    areas, owners, selected = areas or {}, owners or {}, selected or {}
    body: list[CardElement] = heading(escape_line(title, 120))
    body.append(ColumnSet(columns=[
        Column(width="stretch", items=[ChoiceSetInput(
            id=Inputs.FILTER_AREA, label="Área", style="compact", placeholder="Todas",
            choices=[Choice(title=plain(n or c, 60), value=c) for c, n in areas.items()],
            value=selected.get(Inputs.FILTER_AREA) or None)]),
        Column(width="stretch", items=[ChoiceSetInput(
            id=Inputs.FILTER_TYPE, label="Tipo", style="compact", placeholder="Todos",
            choices=[Choice(title=t.label, value=t.value) for t in PieceType],
            value=selected.get(Inputs.FILTER_TYPE) or None)]),
        Column(width="stretch", items=[ChoiceSetInput(
            id=Inputs.FILTER_OWNER, label="Responsable", style="compact", placeholder="Todos",
            choices=[Choice(title=plain(n, 60), value=i) for i, n in owners.items()],
            value=selected.get(Inputs.FILTER_OWNER) or None)]),
    ]))
    body.append(actions(execute_action(Verb.AGENDA_FILTER, "Filtrar"),
                        execute_action(Verb.AGENDA_EXPORT, "Exportar a Excel")))
    total = 0
    for phase, rows in groups.items():
        body.append(section(f"{escape_line(phase, 80)} ({len(rows)})"))
        if not rows:
            body.append(para("Sin solicitudes.", subtle=True))
        for row in rows:
            if total >= MAX_ROWS:
                break
            total += 1
            card = CardData(number=row.number, version=row.version, step=row.step_id)
            deadline = f"Plazo: {fmt_date(row.deadline)}" if row.deadline else "Sin plazo"
            body.append(ColumnSet(spacing="Small", columns=[
                Column(width="stretch", items=[
                    TextBlock(text=f"**N° {escape_line(row.number)}** · {escape_line(row.title, 100)}", wrap=True),
                    TextBlock(text=f"{escape_line(row.step_id)} · {escape_line(row.step_name, 60)} · "
                                   f"{escape_line(row.owner, 60)} · {deadline} · {escape_line(row.status, 40)}",
                              wrap=True, spacing="None", color="Attention" if row.overdue else None,
                              is_subtle=None if row.overdue else True),
                ]),
                Column(width="auto", vertical_content_alignment="Center",
                       items=[actions(card.execute(Verb.REQUEST_SHOW, "Abrir"))]),
            ]))
    shown_all = sum(len(r) for r in groups.values())
    if shown_all > total:
        body.append(para(f"Se muestran {total} de {shown_all}; use los filtros para ver el resto.", subtle=True))
    if indicators:  # after the requests: the agenda is for acting, the figures are context
        body.append(section("Indicadores"))
        body.append(facts((escape_line(label, 80), str(value)) for label, value in indicators))
    return build(body, fallback_text=plain(title, 120))
