"""The request store on SharePoint lists through Microsoft Graph: one item per request, its history and effects beside it.

Lists and columns are in graph/schema.py (provisioned by `python -m deploy.sharepoint provision`).

Atomic transitions. SharePoint has no transaction across items, but one item update is atomic and
conditional (`If-Match: <eTag>`, 412 when stale). So a transition is ONE PATCH of the request's item
in "Solicitudes": the new request JSON, its indexed mirror columns, and an *outbox* column
("Pendientes") holding the history entries and effects the transition implies, with the indexed flag
"TieneEfectos" set. A 412 means someone wrote the item since we read it: we re-read, and if only the
outbox changed (a dispatcher drained it) we retry on the fresh eTag; if the request's version moved we
raise ConcurrencyConflict and write nothing. A 412 can also be our own PATCH applied and then re-sent by
the SDK after a 503/504: the re-read then shows exactly our JSON, and the save counts as done.

Outbox draining. Readers that need effects or history in their own lists (due_effects, effect,
claim/complete/fail, add_effects) first drain every item whose "TieneEfectos" is set: they create the
missing "Efectos" and "Historial" items (identified by deterministic keys: the effect id, and
number/version/seq), then clear the outbox with If-Match on the eTag they read. A crash anywhere in
between loses nothing: the outbox stays on the item until that conditional clear succeeds, and the next
drain skips what already exists. If a transition lands between the creates and the clear, the clear
gets 412 and the outbox (old entries plus new) is drained again later, idempotently. history() reads the
"Historial" items and the undrained outbox together (one $batch call). Two drains racing may both create
an item with the same key; every reader keeps the one with the lowest SharePoint ID, so a duplicate is
never seen twice.

Hot path. get() caches the item's id and eTag; a save() on the version just read PATCHes at once, so a
card click is 1 read + 1 write. Every query filters only on indexed columns (no Prefer header, so it
keeps working past the 5,000-item list view threshold) and follows @odata.nextLink.

Numbers: one "Contadores" item per year, incremented with If-Match and retried on 412 (a token column
tells our own re-sent PATCH from someone else's). Conversation references: "ReferenciasConversacion",
keyed by the indexed person id. Booleans are filtered as `eq 1` (Graph's form for Yes/No columns).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Iterable

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.sites.item.lists.item.items.items_request_builder import ItemsRequestBuilder

from graph.client import send_batch
from graph.schema import ASSIGNEE_COLUMNS, MULTI_LINE_MAX, REQUEST_DATA_COLUMNS, SINGLE_LINE_MAX, ListIds
from procedure.request import Effect, HistoryEntry, Request, Status
from services.ports import (
    ConcurrencyConflict,
    EffectRecord,
    HistoryMark,
    NotFound,
    RequestQuery,
    RequestRow,
    marks_of,
)

OPEN_STATUSES = (Status.ACTIVE.value, Status.ON_HOLD.value)
PAGE_SIZE = 500
BATCH_LIMIT = 20
MAX_CONFLICT_RETRIES = 500  # a counter or effect update retried on 412; each retry re-reads first
RETRIABLE_IN_BATCH = {429, 503, 504}


@dataclass(frozen=True)
class Row:
    """A list item as the store needs it: SharePoint's id, its eTag, and its fields (raw JSON values)."""

    id: str
    etag: str
    fields: dict

    @property
    def int_id(self) -> int:
        return int(self.id)


@dataclass(frozen=True)
class _Snapshot:
    item_id: str
    etag: str
    version: int
    data: str
    outbox: str


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _eq(column: str, value: str) -> str:
    return f"fields/{column} eq {_quote(value)}"


def _instant(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _order_key(index: int) -> str:
    """Creation order of effects, comparable as text (an indexed column can sort it)."""
    return f"{time.time_ns():020d}-{index:05d}"


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "response_status_code", None) if isinstance(exc, APIError) else None


def _row_from_item(item: ListItem) -> Row:
    fields = dict(item.fields.additional_data) if item.fields and item.fields.additional_data else {}
    return Row(str(item.id), item.e_tag or fields.get("@odata.etag", ""), fields)


def _row_from_json(body: dict) -> Row:
    fields = body.get("fields") or {}
    return Row(str(body["id"]), body.get("eTag") or body.get("@odata.etag") or fields.get("@odata.etag", ""), fields)


def _lowest(rows: list[Row]) -> Row | None:
    """Of several items with one key (two writers raced), the oldest is the real one."""
    return min(rows, key=lambda r: r.int_id) if rows else None


def _split(text: str, columns: tuple[str, ...], what: str) -> dict[str, str]:
    if len(text) > MULTI_LINE_MAX * len(columns):
        raise ValueError(f"{what} mide {len(text)} caracteres: no cabe en SharePoint "
                         f"({len(columns)} columnas de {MULTI_LINE_MAX}).")
    return {name: text[i * MULTI_LINE_MAX:(i + 1) * MULTI_LINE_MAX] for i, name in enumerate(columns)}


def _joined(fields: dict, columns: tuple[str, ...]) -> str:
    return "".join(str(fields.get(name) or "") for name in columns)


def _empty_outbox() -> dict:
    return {"history": [], "effects": []}


def _outbox_of(fields: dict) -> dict:
    raw = fields.get("Pendientes") or ""
    return json.loads(raw) if raw else _empty_outbox()


class SharePointRequestStore:
    """RequestStore on five SharePoint lists (see the module docstring for how a transition stays atomic)."""

    def __init__(self, client: GraphServiceClient, site_id: str, lists: ListIds | None = None) -> None:
        self.client = client
        self.site_id = site_id
        self.lists = lists or ListIds.names()
        self._snapshots: dict[str, _Snapshot] = {}

    # ── Graph plumbing ──

    def _list(self, key: str):
        return self.client.sites.by_site_id(self.site_id).lists.by_list_id(getattr(self.lists, key))

    @staticmethod
    def _query_config(flt: str | None, orderby: str | None, top: int) -> RequestConfiguration:
        return RequestConfiguration(query_parameters=ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(
            expand=["fields"], filter=flt, orderby=[f"fields/{orderby}"] if orderby else None, top=top))

    async def _query(self, key: str, flt: str | None, *, orderby: str | None = None, top: int = PAGE_SIZE,
                     limit: int | None = None) -> list[Row]:
        rows: list[Row] = []
        async for row in self._pages(key, flt, orderby=orderby, top=top):
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
        return rows

    async def _pages(self, key: str, flt: str | None, *, orderby: str | None, top: int) -> AsyncIterator[Row]:
        builder = self._list(key).items
        page = await builder.get(request_configuration=self._query_config(flt, orderby, top))
        while page is not None:
            for item in page.value or []:
                yield _row_from_item(item)
            if not page.odata_next_link:
                return
            page = await builder.with_url(page.odata_next_link).get()

    async def _read(self, key: str, item_id: str) -> Row | None:
        try:
            item = await self._list(key).items.by_list_item_id(item_id).get(
                request_configuration=self._query_config(None, None, 1))
        except APIError as exc:
            if _status(exc) == 404:
                return None
            raise
        return _row_from_item(item)

    async def _create(self, key: str, fields: dict) -> Row:
        item = await self._list(key).items.post(ListItem(fields=FieldValueSet(additional_data=fields)))
        return _row_from_item(item)

    async def _patch(self, key: str, item_id: str, fields: dict, etag: str | None) -> str:
        """PATCH the item's fields (conditionally when `etag` is given); returns the new eTag ('' if unknown)."""
        config = RequestConfiguration()
        if etag:
            config.headers.add("If-Match", etag)
        answer = await self._list(key).items.by_list_item_id(item_id).fields.patch(
            FieldValueSet(additional_data=fields), request_configuration=config)
        data = (answer.additional_data or {}) if answer is not None else {}
        return str(data.get("@odata.etag") or "")

    async def _delete(self, key: str, item_id: str, etag: str | None = None) -> None:
        config = RequestConfiguration()
        if etag:
            config.headers.add("If-Match", etag)
        try:
            await self._list(key).items.by_list_item_id(item_id).delete(request_configuration=config)
        except APIError as exc:
            if _status(exc) not in (404, 412):
                raise

    async def _create_many(self, key: str, rows: list[dict]) -> None:
        """Create items in $batch calls of 20; a sub-request throttled on its own is sent again."""
        builder = self._list(key).items
        for start in range(0, len(rows), BATCH_LIMIT):
            pending = {f"c{start + i}": fields for i, fields in enumerate(rows[start:start + BATCH_LIMIT])}
            for attempt in itertools.count():
                answers = await send_batch(self.client, {
                    rid: builder.to_post_request_information(ListItem(fields=FieldValueSet(additional_data=f)))
                    for rid, f in pending.items()})
                retry, wait = {}, 0.0
                for rid, fields in pending.items():
                    answer = answers.get(rid)
                    status = answer.status if answer else 503
                    if status in RETRIABLE_IN_BATCH and attempt < 5:
                        retry[rid] = fields
                        wait = max(wait, float((answer.headers or {}).get("Retry-After", 1)) if answer else 1.0)
                    elif not 200 <= status < 300:
                        message = ((answer.body or {}).get("error") or {}).get("message", "") if answer else ""
                        raise RuntimeError(f"SharePoint no creó un elemento en «{key}»: {status} {message}")
                if not retry:
                    break
                pending = retry
                await asyncio.sleep(min(wait, 30.0))

    # ── requests ──

    @staticmethod
    def _request_fields(request: Request) -> dict:
        people = {column: "" for column in ASSIGNEE_COLUMNS.values()}
        for role, person in request.assignees.items():
            column = ASSIGNEE_COLUMNS.get(role)
            if column is None:
                raise ValueError(f"La lista Solicitudes no tiene columna para el rol {role}: agréguela en graph/schema.py.")
            people[column] = person
        fields = {
            "Title": f"{request.number} — {request.title}"[:SINGLE_LINE_MAX],
            "Numero": request.number, "Estado": request.status.value, "Paso": request.step_id,
            "Area": request.area, "Solicitante": request.requester_id, "Vence": request.due_date.isoformat(),
            "Version": request.version, **people,
        }
        fields.update(_split(request.model_dump_json(), REQUEST_DATA_COLUMNS, f"La solicitud {request.number}"))
        return fields

    @staticmethod
    def _outbox_entries(history: list[HistoryEntry], effects: list[Effect]) -> dict:
        return {"history": [h.model_dump(mode="json") for h in history],
                "effects": [{"effect": e.model_dump(mode="json"), "order": _order_key(i)} for i, e in enumerate(effects)]}

    @staticmethod
    def _merge_outbox(current: dict, new: dict) -> str:
        merged = {"history": current["history"] + new["history"], "effects": current["effects"] + new["effects"]}
        return json.dumps(merged, ensure_ascii=False, separators=(",", ":"))

    def _remember(self, number: str, row: Row) -> _Snapshot:
        snapshot = _Snapshot(row.id, row.etag, int(row.fields.get("Version") or 0),
                             _joined(row.fields, REQUEST_DATA_COLUMNS), str(row.fields.get("Pendientes") or ""))
        self._snapshots[number] = snapshot
        return snapshot

    async def _request_rows(self, number: str) -> list[Row]:
        return await self._query("requests", _eq("Numero", number), top=5)

    async def next_number(self, year: int) -> str:
        key = str(year)
        row: Row | None = None
        for attempt in range(MAX_CONFLICT_RETRIES):
            if row is None:
                row = _lowest(await self._query("counters", _eq("Anio", key), top=5))
            if row is None:
                created = await self._create("counters", {"Title": key, "Anio": key, "Ultimo": 0, "UltimoPor": ""})
                twins = await self._query("counters", _eq("Anio", key), top=5)
                winner = _lowest(twins)
                if winner is not None and winner.id != created.id:
                    await self._delete("counters", created.id, created.etag)
                row = winner
                continue
            last = int(row.fields.get("Ultimo") or 0)
            token = uuid.uuid4().hex
            try:
                await self._patch("counters", row.id, {"Ultimo": last + 1, "UltimoPor": token}, row.etag)
                return f"{year}-{last + 1:04d}"
            except APIError as exc:
                if _status(exc) != 412:
                    raise
            fresh = await self._read("counters", row.id)
            if fresh is not None and fresh.fields.get("UltimoPor") == token:
                return f"{year}-{int(fresh.fields.get('Ultimo')):04d}"  # our PATCH landed, then was re-sent
            row = fresh
            await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * attempt)))
        raise ConcurrencyConflict(f"No se pudo reservar un número para {year}: demasiada concurrencia.")

    async def create(self, request: Request, history: list[HistoryEntry], effects: list[Effect]) -> None:
        if await self._request_rows(request.number):
            raise ConcurrencyConflict(f"Request {request.number} already exists.")
        outbox = self._merge_outbox(_empty_outbox(), self._outbox_entries(history, effects))
        if len(outbox) > MULTI_LINE_MAX:
            raise ValueError(f"La solicitud {request.number}: demasiados pendientes en una sola transición.")
        fields = {**self._request_fields(request), "Pendientes": outbox, "TieneEfectos": True}
        created = await self._create("requests", fields)
        winner = _lowest(await self._request_rows(request.number))
        if winner is not None and winner.id != created.id:
            # Another writer created the same number a moment earlier: ours goes, theirs stands.
            await self._delete("requests", created.id, created.etag)
            raise ConcurrencyConflict(f"Request {request.number} already exists.")
        self._remember(request.number, created)

    async def get(self, number: str) -> Request:
        row = _lowest(await self._request_rows(number))
        if row is None:
            raise NotFound(number)
        return Request.model_validate_json(self._remember(number, row).data)

    async def save(self, request: Request, expected_version: int, history: list[HistoryEntry],
                   effects: list[Effect]) -> None:
        if request.version <= expected_version:
            raise ValueError(f"Request {request.number}: version {request.version} does not follow "
                             f"{expected_version}.")
        number = request.number
        fields = self._request_fields(request)
        data = _joined(fields, REQUEST_DATA_COLUMNS)
        entries = self._outbox_entries(history, effects)
        snapshot = self._snapshots.get(number)
        if snapshot is None or snapshot.version != expected_version:
            row = _lowest(await self._request_rows(number))
            if row is None:
                raise NotFound(number)
            snapshot = self._remember(number, row)
        for _ in range(MAX_CONFLICT_RETRIES):
            if snapshot.version != expected_version:
                raise ConcurrencyConflict(f"Request {number} is at version {snapshot.version}, not {expected_version}.")
            current = json.loads(snapshot.outbox) if snapshot.outbox else _empty_outbox()
            outbox = self._merge_outbox(current, entries)
            if len(outbox) > MULTI_LINE_MAX:
                # The dispatcher has fallen behind: move the old outbox out first, then try again.
                row = await self._read("requests", snapshot.item_id)
                if row is None:
                    raise NotFound(number)
                await self._drain_row(row)
                fresh = await self._read("requests", snapshot.item_id)
                if fresh is None:
                    raise NotFound(number)
                if len(self._merge_outbox(_outbox_of(fresh.fields), entries)) > MULTI_LINE_MAX and not fresh.fields.get("Pendientes"):
                    raise ValueError(f"La solicitud {number}: demasiados pendientes en una sola transición.")
                snapshot = self._remember(number, fresh)
                continue
            try:
                etag = await self._patch("requests", snapshot.item_id,
                                         {**fields, "Pendientes": outbox, "TieneEfectos": True}, snapshot.etag)
            except APIError as exc:
                if _status(exc) == 404:
                    self._snapshots.pop(number, None)
                    raise NotFound(number) from exc
                if _status(exc) != 412:
                    raise
                fresh = await self._read("requests", snapshot.item_id)
                if fresh is None:
                    self._snapshots.pop(number, None)
                    raise NotFound(number) from exc
                snapshot = self._remember(number, fresh)
                if snapshot.version == request.version and snapshot.data == data:
                    return  # our own PATCH, applied and then re-sent by the SDK after a 503/504
                continue
            if etag:
                self._snapshots[number] = _Snapshot(snapshot.item_id, etag, request.version, data, outbox)
            else:
                self._snapshots.pop(number, None)
            return
        raise ConcurrencyConflict(f"Request {number}: too many concurrent writers.")

    async def history(self, number: str) -> list[HistoryEntry]:
        # One HTTP call: the drained entries and the item's outbox, read together.
        answers = await send_batch(self.client, {
            "history": self._list("history").items.to_get_request_information(
                self._query_config(_eq("Numero", number), None, PAGE_SIZE)),
            "request": self._list("requests").items.to_get_request_information(
                self._query_config(_eq("Numero", number), None, 5)),
        })
        for name, answer in answers.items():
            if not 200 <= answer.status < 300:
                raise RuntimeError(f"SharePoint respondió {answer.status} al leer el historial ({name}).")
        body = answers["history"].body or {}
        rows = [_row_from_json(v) for v in body.get("value", [])]
        link = body.get("@odata.nextLink")
        builder = self._list("history").items
        while link:
            page = await builder.with_url(link).get()
            rows += [_row_from_item(i) for i in page.value or []]
            link = page.odata_next_link
        entries: dict[tuple[int, int], tuple[int, HistoryEntry]] = {}
        for row in rows:
            entry = HistoryEntry.model_validate_json(row.fields["Datos"])
            key = (entry.version, entry.seq)
            if key not in entries or row.int_id < entries[key][0]:
                entries[key] = (row.int_id, entry)
        request_row = _lowest([_row_from_json(v) for v in (answers["request"].body or {}).get("value", [])])
        if request_row is not None:
            for raw in _outbox_of(request_row.fields)["history"]:
                entry = HistoryEntry.model_validate(raw)
                entries.setdefault((entry.version, entry.seq), (1 << 62, entry))
        return [entries[k][1] for k in sorted(entries)]

    async def histories(self, numbers: Iterable[str]) -> dict[str, list[HistoryEntry]]:
        # One history at a time: the embedded store is the one measured at scale.
        return {number: await self.history(number) for number in dict.fromkeys(numbers)}

    async def history_marks(self, numbers: Iterable[str]) -> dict[str, list[HistoryMark]]:
        return {number: marks_of(history) for number, history in (await self.histories(numbers)).items()}

    async def rows(self, query: RequestQuery) -> list[RequestRow]:
        return [RequestRow(number=r.number, version=r.version, status=r.status, step_id=r.step_id, area=r.area,
                           due_date=r.due_date, delivered_at=r.delivered_at) for r in await self.find(query)]

    async def find(self, query: RequestQuery) -> list[Request]:
        base = []
        if query.area is not None:
            base.append(_eq("Area", query.area))
        if query.step_id is not None:
            base.append(_eq("Paso", query.step_id))
        statuses = [_eq("Estado", s) for s in OPEN_STATUSES] if query.open_only else [None]
        people = ([_eq("Solicitante", query.participant)]
                  + [_eq(column, query.participant) for column in ASSIGNEE_COLUMNS.values()]
                  if query.participant is not None else [None])
        filters = [" and ".join(c for c in (*base, s, p) if c) or None for s, p in itertools.product(statuses, people)]
        top = max(1, min(query.limit, PAGE_SIZE))
        if len(filters) == 1:
            rows = await self._query("requests", filters[0], orderby="Numero", top=top, limit=query.limit)
        else:
            rows = await self._query_union("requests", filters, "Numero", top, query.limit)
        best: dict[str, tuple[int, str]] = {}
        for row in rows:
            data = _joined(row.fields, REQUEST_DATA_COLUMNS)
            number = str(json.loads(data)["number"]) if data else ""
            if number and (number not in best or row.int_id < best[number][0]):
                best[number] = (row.int_id, data)
        return [Request.model_validate_json(best[n][1]) for n in sorted(best)[:query.limit]]

    async def _query_union(self, key: str, filters: list[str | None], orderby: str, top: int, limit: int) -> list[Row]:
        """Several indexed queries as one $batch (SharePoint's indexed filters have no `or`)."""
        builder = self._list(key).items
        answers = await send_batch(self.client, {
            f"q{i}": builder.to_get_request_information(self._query_config(f, orderby, top))
            for i, f in enumerate(filters)})
        rows: list[Row] = []
        for i in range(len(filters)):
            answer = answers[f"q{i}"]
            if not 200 <= answer.status < 300:
                raise RuntimeError(f"SharePoint respondió {answer.status} a una consulta de «{key}».")
            page_rows = [_row_from_json(v) for v in (answer.body or {}).get("value", [])]
            link = (answer.body or {}).get("@odata.nextLink")
            while link and len(page_rows) < limit:
                page = await builder.with_url(link).get()
                page_rows += [_row_from_item(item) for item in page.value or []]
                link = page.odata_next_link
            rows += page_rows[:limit]
        return rows

    # ── the outbox ──

    async def _drain_outboxes(self) -> None:
        for row in await self._query("requests", "fields/TieneEfectos eq 1"):
            await self._drain_row(row)

    async def _drain_row(self, row: Row) -> None:
        outbox = _outbox_of(row.fields)
        number = str(row.fields.get("Numero") or "")
        if outbox["effects"]:
            stored = {json.loads(r.fields["Datos"])["effect"]["id"]
                      for r in await self._query("effects", _eq("Solicitud", number))}
            missing = [e for e in outbox["effects"] if e["effect"]["id"] not in stored]
            await self._create_many("effects", [self._effect_fields(Effect.model_validate(e["effect"]), e["order"])
                                                for e in missing])
        if outbox["history"]:
            stored_keys = {r.fields.get("Clave") for r in await self._query("history", _eq("Numero", number))}
            entries = [HistoryEntry.model_validate(h) for h in outbox["history"]]
            await self._create_many("history", [self._history_fields(h) for h in entries
                                                if self._history_key(h) not in stored_keys])
        try:
            await self._patch("requests", row.id, {"Pendientes": "", "TieneEfectos": False}, row.etag)
        except APIError as exc:
            if _status(exc) not in (404, 412):  # 412: a new transition appended; the next drain takes it all
                raise
        else:
            self._snapshots.pop(number, None)

    @staticmethod
    def _history_key(entry: HistoryEntry) -> str:
        return f"{entry.request_number}/{entry.version}/{entry.seq}"

    def _history_fields(self, entry: HistoryEntry) -> dict:
        return {"Title": self._history_key(entry)[:SINGLE_LINE_MAX], "Numero": entry.request_number,
                "Clave": self._history_key(entry), "Version": entry.version, "Secuencia": entry.seq,
                "Paso": entry.step_id[:SINGLE_LINE_MAX], "Accion": entry.action[:SINGLE_LINE_MAX],
                "Actor": entry.actor_name[:SINGLE_LINE_MAX], "Resumen": entry.summary[:MULTI_LINE_MAX],
                "Datos": entry.model_dump_json()}

    # ── effects ──

    @staticmethod
    def _effect_state(effect: Effect) -> dict:
        return {"effect": effect.model_dump(mode="json"), "status": "pending", "attempts": 0,
                "next_attempt_at": None, "last_error": "", "result": {}, "lease_until": 0.0, "lease_by": ""}

    def _effect_fields(self, effect: Effect, order: str, state: dict | None = None) -> dict:
        if len(effect.id) > SINGLE_LINE_MAX:
            raise ValueError(f"El identificador del efecto supera {SINGLE_LINE_MAX} caracteres: {effect.id[:60]}…")
        state = state or self._effect_state(effect)
        fields = {"Title": effect.id, "EfectoId": effect.id, "Solicitud": effect.request_number,
                  "Tipo": effect.kind.value, "Orden": order}
        fields.update(self._effect_mirror(state))
        return fields

    @staticmethod
    def _effect_mirror(state: dict) -> dict:
        next_at = state["next_attempt_at"]
        return {"Estado": state["status"], "Intentos": state["attempts"],
                "ProximoIntento": _instant(datetime.fromisoformat(next_at)) if next_at else 0,
                "Arriendo": state["lease_until"], "ArrendadoPor": state["lease_by"],
                "Datos": json.dumps(state, ensure_ascii=False, separators=(",", ":"))}

    @staticmethod
    def _record(row: Row) -> EffectRecord:
        state = json.loads(row.fields["Datos"])
        next_at = state["next_attempt_at"]
        return EffectRecord(effect=Effect.model_validate(state["effect"]), status=state["status"],
                            attempts=state["attempts"],
                            next_attempt_at=datetime.fromisoformat(next_at) if next_at else None,
                            last_error=state["last_error"], result=state["result"])

    @staticmethod
    def _unique(rows: list[Row]) -> list[Row]:
        """Keep query order; of rows with one effect id, only the lowest SharePoint ID."""
        best: dict[str, Row] = {}
        for row in rows:
            key = str(row.fields.get("EfectoId"))
            if key not in best or row.int_id < best[key].int_id:
                best[key] = row
        return [row for row in rows if best[str(row.fields.get("EfectoId"))] is row]

    async def _effect_row(self, effect_id: str, *, drain: bool = True) -> Row | None:
        rows = await self._query("effects", _eq("EfectoId", effect_id), top=5)
        if not rows and drain:
            await self._drain_outboxes()  # it may still be waiting in a request's outbox
            rows = await self._query("effects", _eq("EfectoId", effect_id), top=5)
        row = _lowest(rows)
        for twin in rows:
            if twin is not row:
                await self._drop_twin(twin)
        return row

    async def _drop_twin(self, twin: Row) -> None:
        """Delete an effect's younger twin (a create re-sent after Graph had done it). Nobody writes a twin,
        so it stays "pending" forever and due_effects, filtering on Estado, would list it once the real item
        is done: the dispatcher would try it at every round and, past `limit` of them, see nothing else."""
        try:
            await self._delete("effects", twin.id, twin.etag)
        except Exception:  # best effort: it is tried again the next time the effect is looked up
            pass

    async def _update_effect(self, effect_id: str, change) -> Any:
        """Read-modify-write of an effect's state with If-Match; `change(state)` returns (new state or None, result)."""
        row = await self._effect_row(effect_id)
        if row is None:
            raise NotFound(effect_id)
        for _ in range(MAX_CONFLICT_RETRIES):
            state = json.loads(row.fields["Datos"])
            new_state, result = change(state)
            if new_state is None:
                return result
            try:
                await self._patch("effects", row.id, self._effect_mirror(new_state), row.etag)
                return result
            except APIError as exc:
                if _status(exc) != 412:
                    raise
            fresh = await self._read("effects", row.id)
            if fresh is None:
                raise NotFound(effect_id)
            if json.loads(fresh.fields["Datos"]) == new_state:
                return result  # our PATCH landed and the SDK re-sent it
            row = fresh
        raise ConcurrencyConflict(f"Effect {effect_id}: too many concurrent writers.")

    async def due_effects(self, now: datetime, limit: int = 50) -> list[EffectRecord]:
        await self._drain_outboxes()
        t = _instant(now)
        flt = f"fields/Estado eq 'pending' and fields/ProximoIntento le {t!r}"
        rows: list[Row] = []
        free = 0
        async for row in self._pages("effects", flt, orderby="Orden", top=max(limit, 50)):
            rows.append(row)
            free += float(row.fields.get("Arriendo") or 0) < t
            if free > limit:  # one past the limit, so a twin of the last one is seen too
                break
        due = [r for r in self._unique(rows) if float(r.fields.get("Arriendo") or 0) < t]
        return [self._record(r) for r in due[:limit]]

    async def claim_effect(self, effect_id: str, now: datetime, lease_seconds: int = 60) -> bool:
        t = _instant(now)
        token = uuid.uuid4().hex

        def claim(state: dict):
            if state["lease_by"] == token:
                return None, True
            if state["status"] != "pending" or state["lease_until"] >= t:
                return None, False
            return {**state, "lease_until": t + lease_seconds, "lease_by": token}, True

        try:
            return await self._update_effect(effect_id, claim)
        except NotFound:
            return False

    async def complete_effect(self, effect_id: str, result: dict) -> None:
        await self._update_effect(effect_id, lambda s: (
            {**s, "status": "done", "result": result, "lease_until": 0.0, "lease_by": ""}, None))

    async def fail_effect(self, effect_id: str, error: str, retry_at: datetime | None) -> None:
        await self._update_effect(effect_id, lambda s: (
            {**s, "attempts": s["attempts"] + 1, "last_error": error, "lease_until": 0.0, "lease_by": "",
             "status": "pending" if retry_at is not None else "failed",
             "next_attempt_at": retry_at.isoformat() if retry_at is not None else None}, None))

    async def failed_effects(self, limit: int = 100) -> list[EffectRecord]:
        rows = await self._query("effects", "fields/Estado eq 'failed'", orderby="Orden")
        return [self._record(r) for r in self._unique(rows)[:limit]]

    async def effect(self, effect_id: str) -> EffectRecord | None:
        row = await self._effect_row(effect_id)
        return self._record(row) if row is not None else None

    async def stored_effect_ids(self, effect_ids: Iterable[str]) -> set[str]:
        # One outbox drain, then the lookups 20 to a $batch: a reminder run asks this for every open request.
        wanted = list(dict.fromkeys(effect_ids))
        if not wanted:
            return set()
        await self._drain_outboxes()
        found: set[str] = set()
        for i in range(0, len(wanted), BATCH_LIMIT):
            chunk = wanted[i:i + BATCH_LIMIT]
            answers = await send_batch(self.client, {
                str(k): self._list("effects").items.to_get_request_information(
                    self._query_config(_eq("EfectoId", effect_id), None, 5))
                for k, effect_id in enumerate(chunk)})
            for k, effect_id in enumerate(chunk):
                answer = answers[str(k)]
                if not 200 <= answer.status < 300:
                    raise RuntimeError(f"SharePoint respondió {answer.status} al buscar el efecto {effect_id}.")
                if (answer.body or {}).get("value"):
                    found.add(effect_id)
        return found

    async def add_effects(self, effects: list[Effect]) -> list[str]:
        if not effects:
            return []
        await self._drain_outboxes()
        stored: set[str] = set()
        for number in dict.fromkeys(e.request_number for e in effects):
            stored |= {str(r.fields.get("EfectoId")) for r in await self._query("effects", _eq("Solicitud", number))}
        fresh = [e for e in dict((e.id, e) for e in effects).values() if e.id not in stored]
        await self._create_many("effects", [self._effect_fields(e, _order_key(i)) for i, e in enumerate(fresh)])
        return [e.id for e in fresh]

    # ── conversation references ──

    async def save_reference(self, person_id: str, reference: dict) -> None:
        data = json.dumps({"person_id": person_id, "reference": reference}, ensure_ascii=False)
        row = _lowest(await self._query("references", _eq("Persona", person_id), top=5))
        if row is None:
            await self._create("references", {"Title": person_id[:SINGLE_LINE_MAX], "Persona": person_id,
                                              "Datos": data})
        else:
            await self._patch("references", row.id, {"Datos": data}, None)  # the newest reference wins

    async def get_reference(self, person_id: str) -> dict | None:
        row = _lowest(await self._query("references", _eq("Persona", person_id), top=5))
        return json.loads(row.fields["Datos"])["reference"] if row is not None else None

    async def close(self) -> None:
        self._snapshots.clear()
