"""FakeGraph: a loopback aiohttp stand-in for the Microsoft Graph endpoints Claqueta uses, with Graph's rules and faults."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web

API = "/v1.0"
UPLOAD_PREFIX = "/upload-sessions/"
CHUNK_UNIT = 320 * 1024
MAX_CHUNK = 60 * 1024 * 1024
MAX_BATCH = 20
MAX_INDEXES = 20
SINGLE_LINE_MAX = 255
MULTI_LINE_MAX = 63_999
DEFAULT_PAGE = 200
PREFER_NON_INDEXED = "HonorNonIndexedQueriesWarningMayFailRandomly"
# Columns SharePoint creates on every list; only ID is indexed by default.
BUILTIN_FIELDS = {"id", "ID", "Title", "Created", "Modified", "ContentType", "AuthorLookupId", "EditorLookupId",
                  "Attachments", "Edit", "LinkTitle", "LinkTitleNoMenu", "ItemChildCount", "FolderChildCount"}
ALWAYS_INDEXED = {"id", "ID"}
AVAILABILITY = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4", "unknown": "2"}


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Reply:
    status: int
    body: Any = None  # dict → JSON; bytes → raw; None → empty
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    method: str
    path: str
    route: str
    status: int
    at: float  # time.monotonic() when the request arrived
    headers: dict[str, str]
    in_batch: bool = False


@dataclass
class Request:
    """One request as the routes see it, whether it came over HTTP or inside a $batch."""

    method: str
    path: str  # below /v1.0, e.g. /sites/x/lists
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base: str  # http://127.0.0.1:port/v1.0, for nextLink and uploadUrl

    def json(self) -> dict:
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise GraphError(400, "BadRequest", f"Unable to read JSON request payload: {exc}") from exc
        if not isinstance(value, dict):
            raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
        return value


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unquote_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


# ── SharePoint lists ─────────────────────────────────────────────────────────────────────
@dataclass
class Column:
    name: str
    kind: str  # text, number, boolean, dateTime, choice, personOrGroup, ...
    indexed: bool = False
    multi_line: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    raw: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        body = {"id": self.id, "name": self.name, "displayName": self.name, "indexed": self.indexed,
                "columnGroup": "Custom Columns", "enforceUniqueValues": False, "hidden": False, "readOnly": False}
        body[self.kind] = self.raw.get(self.kind, {}) if self.kind != "text" else {
            "allowMultipleLines": self.multi_line, "maxLength": MULTI_LINE_MAX if self.multi_line else SINGLE_LINE_MAX}
        return body


@dataclass
class Item:
    id: int
    guid: str
    version: int
    fields: dict
    created: datetime
    modified: datetime

    @property
    def etag(self) -> str:
        return f'"{self.guid},{self.version}"'


@dataclass
class SpList:
    id: str
    display_name: str
    template: str
    columns: dict[str, Column]
    items: dict[int, Item] = field(default_factory=dict)
    next_id: int = 1
    created: datetime = field(default_factory=_now)

    def as_json(self, site_id: str) -> dict:
        return {"id": self.id, "name": self.display_name, "displayName": self.display_name,
                "createdDateTime": _iso(self.created), "list": {"template": self.template, "hidden": False},
                "webUrl": f"https://fake.sharepoint.com/sites/claqueta/Lists/{quote(self.display_name)}",
                "parentReference": {"siteId": site_id}}

    def is_indexed(self, name: str) -> bool:
        if name in ALWAYS_INDEXED:
            return True
        column = self.columns.get(name)
        return bool(column and column.indexed)


_CLAUSE = re.compile(
    r"^\s*fields/(?P<field>[A-Za-z_][\w]*)\s+(?P<op>eq|ne|lt|le|gt|ge)\s+"
    r"(?P<value>'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|null)\s*$"
)


def _split_and(expression: str) -> list[str]:
    parts, depth_quote, current = [], False, []
    tokens = re.split(r"(\s+and\s+|')", expression)
    for token in tokens:
        if token == "'":
            depth_quote = not depth_quote
            current.append(token)
        elif re.fullmatch(r"\s+and\s+", token or "") and not depth_quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(token or "")
    parts.append("".join(current))
    return parts


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    return float(text) if "." in text else int(text)


def parse_filter(expression: str) -> list[tuple[str, str, Any]]:
    clauses = []
    for part in _split_and(expression):
        match = _CLAUSE.match(part)
        if not match:
            raise GraphError(400, "invalidRequest", "Invalid filter clause")
        clauses.append((match["field"], match["op"], _literal(match["value"])))
    return clauses


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if actual is None or expected is None:
        return False
    try:
        return {"lt": actual < expected, "le": actual <= expected, "gt": actual > expected, "ge": actual >= expected}[op]
    except TypeError:
        return False


# ── Files ────────────────────────────────────────────────────────────────────────────────
@dataclass
class DriveItem:
    id: str
    name: str
    parent_id: str | None
    is_folder: bool
    content: bytes = b""
    created: datetime = field(default_factory=_now)
    etag_version: int = 1


@dataclass
class UploadSession:
    id: str
    drive_id: str
    parent_id: str
    name: str
    conflict: str
    expires: datetime
    size: int | None = None
    received: bytearray = field(default_factory=bytearray)

    def next_ranges(self) -> list[str]:
        return [f"{len(self.received)}-"] if self.size is None else [f"{len(self.received)}-{self.size - 1}"]


@dataclass
class Faults:
    throttle_next: int = 0
    throttle_fraction: float = 0.0
    retry_after: int = 1
    fail_after_work_next: int = 0
    fail_after_work_status: int = 503
    routes: frozenset[str] | None = None  # None: every route; else route names the faults apply to
    # fail_randomly: shares of top-level calls answered 429 / 503 before the work / 503 after it /
    # hung for hang_seconds (past the client's timeout) and then served, as a gateway whose backend carries on.
    random_throttle: float = 0.0
    random_unavailable: float = 0.0
    random_after_work: float = 0.0
    random_timeout: float = 0.0
    hang_seconds: float = 0.0
    injected: Counter = field(default_factory=Counter)  # "kind" and "kind route" → calls that got it


class FakeGraph:
    """The Graph endpoints Claqueta uses, under /v1.0 on 127.0.0.1, behaving as Graph does where it matters.

    Use as `async with FakeGraph() as graph:`; `graph.base_url` is what GRAPH_BASE_URL should be,
    and `graph.token` what GRAPH_STATIC_TOKEN should be.
    """

    def __init__(
        self,
        *,
        token: str = "fake-graph-token",
        site_id: str = "fake.sharepoint.com,11111111-2222-3333-4444-555555555555,66666666-7777-8888-9999-000000000000",
        drive_id: str = "b!fakeDriveDocuments",
        list_view_threshold: int = 5000,
        upload_session_ttl: timedelta = timedelta(hours=1),
        latency: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.token = token
        self.site_id = site_id
        self.drive_id = drive_id
        self.list_view_threshold = list_view_threshold
        self.upload_session_ttl = upload_session_ttl
        self.latency = latency
        self.faults = Faults()
        self._rng = random.Random(seed)
        self.lists: dict[str, SpList] = {}
        self.sent_mail: list[dict] = []
        self.events: dict[str, list[dict]] = {}  # mailbox (lower-case) → events
        self.groups: dict[str, list[dict]] = {}
        self.drive_items: dict[str, DriveItem] = {"root": DriveItem("root", "root", None, True)}
        self.upload_sessions: dict[str, UploadSession] = {}
        self.calls: list[Call] = []
        self.route_counts: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes = self._route_table()
        # Route name → status every call to it gets (a permission not granted); see deny().
        self.denied: dict[str, int] = {}
        # False: group members come back with their id only, as Graph does without User.ReadBasic.All.
        self.member_details = True

    # ── lifecycle ──
    async def __aenter__(self) -> "FakeGraph":
        app = web.Application(client_max_size=MAX_CHUNK + 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle_http)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    # ── knobs ──
    def throttle(self, next_calls: int = 1, *, retry_after: int = 1, routes: set[str] | None = None) -> None:
        """Answer 429 with Retry-After to the next `next_calls` calls (to `routes` only, if given)."""
        self.faults.throttle_next = next_calls
        self.faults.retry_after = retry_after
        self.faults.routes = frozenset(routes) if routes else None

    def throttle_randomly(self, fraction: float, *, retry_after: int = 1, routes: set[str] | None = None) -> None:
        self.faults.throttle_fraction = fraction
        self.faults.retry_after = retry_after
        self.faults.routes = frozenset(routes) if routes else None

    def fail_after_work(self, next_calls: int = 1, *, status: int = 503, routes: set[str] | None = None) -> None:
        """Do the work of the next `next_calls` calls, then answer `status` (a gateway losing the answer)."""
        self.faults.fail_after_work_next = next_calls
        self.faults.fail_after_work_status = status
        self.faults.routes = frozenset(routes) if routes else None

    def fail_randomly(self, *, throttle: float = 0.0, unavailable: float = 0.0, after_work: float = 0.0,
                      timeout: float = 0.0, retry_after: int = 1, hang_seconds: float = 2.0,
                      routes: set[str] | None = None) -> None:
        """Each top-level call (seeded draw) gets at most one fault: 429 with Retry-After, 503 without doing
        the work, 503 after doing it, or an answer held `hang_seconds` (the work is then done anyway)."""
        self.faults.random_throttle, self.faults.random_unavailable = throttle, unavailable
        self.faults.random_after_work, self.faults.random_timeout = after_work, timeout
        self.faults.retry_after, self.faults.hang_seconds = retry_after, hang_seconds
        self.faults.routes = frozenset(routes) if routes else None

    def deny(self, *routes: str, status: int = 403) -> None:
        """Answer `status` (403: Authorization_RequestDenied) to every call to these routes, until allow()."""
        self.denied.update({route: status for route in routes})

    def allow(self, *routes: str) -> None:
        for route in routes or list(self.denied):
            self.denied.pop(route, None)

    def clear_faults(self) -> None:
        injected = self.faults.injected
        self.faults = Faults()
        self.faults.injected = injected  # what was injected stays readable after the faults stop

    def add_group(self, group_id: str, members: list[dict]) -> None:
        self.groups[group_id] = [{"@odata.type": "#microsoft.graph.user", **m} for m in members]

    def calls_to(self, route: str) -> list[Call]:
        return [c for c in self.calls if c.route == route]

    def get_list(self, name_or_id: str) -> SpList:
        for sp_list in self.lists.values():
            if sp_list.id == name_or_id or sp_list.display_name == name_or_id:
                return sp_list
        raise GraphError(404, "itemNotFound", "The requested list was not found.")

    # ── HTTP entry ──
    async def _handle_http(self, http: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        if self.latency:
            await asyncio.sleep(self.latency)
        body = await http.read()
        headers = {k.lower(): v for k, v in http.headers.items()}
        base = f"http://{http.host}{API}"
        path = http.path
        if path.startswith(UPLOAD_PREFIX):
            route = "upload"
            reply = self._throttled(route) or self._lost_after_work(
                route, await self._upload_endpoint(http.method, path[len(UPLOAD_PREFIX):], headers, body))
        elif not path.startswith(API + "/"):
            reply, route = _error_reply(GraphError(404, "BadRequest", f"Resource not found for the segment '{path}'.")), "unknown"
        else:
            request = Request(http.method, path[len(API):], dict(parse_qsl(http.query_string, keep_blank_values=True)),
                              headers, body, base)
            reply, route = await self._serve(request, top_level=True)
        self.calls.append(Call(http.method, path, route, reply.status, arrived, headers))
        self.route_counts[route] += 1
        return _to_http(reply)

    async def _serve(self, request: Request, *, top_level: bool) -> tuple[Reply, str]:
        handler, params, route = self._match(request.method, request.path)
        if handler is None:
            return _error_reply(GraphError(400 if route == "method" else 404, "BadRequest",
                                           f"Resource not found for the segment '{request.path}'.")), route
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return _error_reply(GraphError(401, "InvalidAuthenticationToken",
                                           "Access token is empty." if not auth else "Access token validation failure.")), route
        if route in self.denied:
            return _error_reply(GraphError(self.denied[route], "accessDenied" if self.denied[route] == 403 else "BadRequest",
                                           "Either scp or roles claim need to be present in the token."
                                           if self.denied[route] == 403 else "Denied by the test.")), route
        if top_level and (throttled := self._throttled(route)):
            return throttled, route
        fault = self._random_fault(route) if top_level else None
        if fault == "throttle":
            return _error_reply(GraphError(429, "TooManyRequests", "Too many requests.",
                                           {"Retry-After": str(self.faults.retry_after)})), route
        if fault == "unavailable":
            return _error_reply(GraphError(503, "serviceNotAvailable", "The service is temporarily unavailable.")), route
        if fault == "timeout":
            await asyncio.sleep(self.faults.hang_seconds)
        try:
            reply = await handler(request, **params)
        except GraphError as exc:
            reply = _error_reply(exc)
        if fault == "after_work":
            reply = _error_reply(GraphError(503, "serviceNotAvailable", "The service is temporarily unavailable."))
        if top_level:
            reply = self._lost_after_work(route, reply)
        return reply, route

    def _random_fault(self, route: str) -> str | None:
        f = self.faults
        shares = (("throttle", f.random_throttle), ("unavailable", f.random_unavailable),
                  ("after_work", f.random_after_work), ("timeout", f.random_timeout))
        if not self._applies(route) or not any(share for _, share in shares):
            return None
        draw = self._rng.random()
        for kind, share in shares:
            if draw < share:
                f.injected[kind] += 1
                f.injected[f"{kind} {route}"] += 1
                return kind
            draw -= share
        return None

    def _applies(self, route: str) -> bool:
        return self.faults.routes is None or route in self.faults.routes

    def _throttled(self, route: str) -> Reply | None:
        if self._applies(route) and (self.faults.throttle_next > 0 or (
                self.faults.throttle_fraction and self._rng.random() < self.faults.throttle_fraction)):
            self.faults.throttle_next = max(0, self.faults.throttle_next - 1)
            return _error_reply(GraphError(429, "TooManyRequests", "Too many requests.",
                                           {"Retry-After": str(self.faults.retry_after)}))
        return None

    def _lost_after_work(self, route: str, reply: Reply) -> Reply:
        if self._applies(route) and self.faults.fail_after_work_next > 0:
            self.faults.fail_after_work_next -= 1
            self.faults.injected[f"after_work {route}"] += 1
            return _error_reply(GraphError(self.faults.fail_after_work_status, "serviceNotAvailable",
                                           "The service is temporarily unavailable."))
        return reply

    def _match(self, method: str, path: str) -> tuple[Callable[..., Awaitable[Reply]] | None, dict, str]:
        path_matched = False
        for verb, pattern, name, handler in self._routes:
            match = pattern.match(path)
            if match:
                path_matched = True
                if verb == method:
                    return handler, match.groupdict(), name
        return None, {}, "method" if path_matched else "unknown"

    def _route_table(self) -> list[tuple[str, re.Pattern, str, Callable[..., Awaitable[Reply]]]]:
        seg = r"(?P<{}>[^/]+)"
        site = "/sites/" + seg.format("site")
        lst = site + "/lists/" + seg.format("list")
        item = lst + "/items/" + seg.format("item")
        user = "/users/" + seg.format("mailbox")
        drive = "/drives/" + seg.format("drive")
        table = [
            ("POST", "/\\$batch", "batch", self._batch),
            ("GET", site, "site.get", self._site_get),
            ("GET", site + "/lists", "lists.list", self._lists_list),
            ("POST", site + "/lists", "lists.create", self._lists_create),
            ("GET", lst, "list.get", self._list_get),
            ("GET", lst + "/columns", "columns.list", self._columns_list),
            ("POST", lst + "/columns", "columns.create", self._columns_create),
            ("PATCH", lst + "/columns/" + seg.format("column"), "columns.update", self._columns_update),
            ("GET", lst + "/items", "items.list", self._items_list),
            ("POST", lst + "/items", "items.create", self._items_create),
            ("GET", item, "items.get", self._items_get),
            ("DELETE", item, "items.delete", self._items_delete),
            ("PATCH", item + "/fields", "items.update", self._items_update),
            ("GET", item + "/fields", "items.fields", self._items_fields),
            ("POST", user + "/sendMail", "sendMail", self._send_mail),
            ("POST", user + "/(?:calendar/)?events", "events.create", self._events_create),
            ("GET", user + "/(?:calendar/)?events", "events.list", self._events_list),
            ("GET", user + "/(?:calendar/)?events/" + seg.format("event"), "events.get", self._events_get),
            ("DELETE", user + "/(?:calendar/)?events/" + seg.format("event"), "events.delete", self._events_delete),
            ("POST", user + "/calendar/getSchedule", "getSchedule", self._get_schedule),
            ("GET", user + "/calendar", "calendar.get", self._calendar_get),
            ("POST", drive + "/(?P<target>root|items/[^/:]+):/(?P<rel>.+):/createUploadSession", "upload.create",
             self._upload_create),
            ("POST", drive + "/items/" + seg.format("item_id") + "/createLink", "createLink", self._create_link),
            ("GET", drive + "/(?P<target>root|items/[^/:]+):/(?P<rel>.+?):?/children", "children.list", self._children_list),
            ("POST", drive + "/(?P<target>root|items/[^/:]+):/(?P<rel>.+?):?/children", "children.create", self._children_create),
            ("GET", drive + "/(?P<target>root|items/[^/:]+)/children", "children.list", self._children_list),
            ("POST", drive + "/(?P<target>root|items/[^/:]+)/children", "children.create", self._children_create),
            ("GET", drive + "/(?P<target>root|items/[^/:]+):/(?P<rel>.+?):?", "driveItem.get", self._drive_item_get),
            ("GET", drive + "/(?P<target>root|items/[^/:]+)", "driveItem.get", self._drive_item_get),
            ("GET", "/groups/" + seg.format("group") + "/(?P<kind>members|transitiveMembers)", "groups.members",
             self._group_members),
        ]
        return [(verb, re.compile("^" + pattern + "/?$"), name, handler) for verb, pattern, name, handler in table]

    # ── $batch ──
    async def _batch(self, request: Request) -> Reply:
        payload = request.json()
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            raise GraphError(400, "BadRequest", f"The number of requests in a batch exceeds the limit of {MAX_BATCH}.")
        ids = [r.get("id") for r in requests]
        if len(set(ids)) != len(ids) or any(not i for i in ids):
            raise GraphError(400, "BadRequest", "Batch request ids must be present and unique.")
        responses = []
        for sub in requests:
            url = sub.get("url", "")
            if url.startswith("http") or not url:
                responses.append(_batch_error(sub, GraphError(400, "BadRequest", "Invalid request URL.")))
                continue
            if url.startswith(API + "/"):
                url = url[len(API):]
            if not url.startswith("/"):
                url = "/" + url
            parts = urlsplit(url)
            headers = {k.lower(): str(v) for k, v in (sub.get("headers") or {}).items()}
            headers["authorization"] = request.headers.get("authorization", "")
            body = sub.get("body")
            if body is not None and "content-type" not in headers:
                responses.append(_batch_error(sub, GraphError(400, "BadRequest",
                                                              "Content-Type header is required for a request with a body.")))
                continue
            raw = b"" if body is None else (json.dumps(body).encode() if isinstance(body, (dict, list))
                                            else base64.b64decode(body))
            inner = Request(str(sub.get("method", "GET")).upper(), unquote(parts.path),
                            dict(parse_qsl(parts.query, keep_blank_values=True)), headers, raw, request.base)
            reply, route = await self._serve(inner, top_level=False)
            self.calls.append(Call(inner.method, API + inner.path, route, reply.status, time.monotonic(), headers, True))
            self.route_counts[route] += 1
            entry: dict[str, Any] = {"id": sub["id"], "status": reply.status,
                                     "headers": {**reply.headers, **({"Content-Type": "application/json"}
                                                                     if isinstance(reply.body, dict) else {})}}
            if isinstance(reply.body, dict):
                entry["body"] = reply.body
            responses.append(entry)
        return Reply(200, {"responses": responses})

    # ── sites and lists ──
    def _check_site(self, site: str) -> None:
        if site not in (self.site_id, "root"):
            raise GraphError(404, "itemNotFound", "Requested site could not be found")

    async def _site_get(self, request: Request, site: str) -> Reply:
        self._check_site(site)
        return Reply(200, {"id": self.site_id, "displayName": "Claqueta", "webUrl": "https://fake.sharepoint.com/sites/claqueta"})

    async def _lists_list(self, request: Request, site: str) -> Reply:
        self._check_site(site)
        lists = list(self.lists.values())
        flt = request.query.get("$filter")
        if flt:
            match = re.fullmatch(r"\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*", flt)
            if not match:
                raise GraphError(400, "invalidRequest", "Invalid filter clause")
            lists = [x for x in lists if x.display_name == match[1].replace("''", "'")]
        return Reply(200, {"value": [x.as_json(self.site_id) for x in lists]})

    async def _lists_create(self, request: Request, site: str) -> Reply:
        self._check_site(site)
        body = request.json()
        name = body.get("displayName")
        if not name:
            raise GraphError(400, "invalidRequest", "displayName is required.")
        if any(x.display_name.lower() == name.lower() for x in self.lists.values()):
            raise GraphError(409, "nameAlreadyExists", "A list, survey, discussion board, or document library with "
                                                      "the specified title already exists in this Web site.")
        columns = {"Title": Column("Title", "text")}
        for raw in body.get("columns") or []:
            column = _column_from_json(raw)
            columns[column.name] = column
        if sum(c.indexed for c in columns.values()) > MAX_INDEXES:
            raise GraphError(400, "invalidRequest", f"A list can have at most {MAX_INDEXES} indexed columns.")
        sp_list = SpList(str(uuid.uuid4()), name, (body.get("list") or {}).get("template", "genericList"), columns)
        self.lists[sp_list.id] = sp_list
        return Reply(201, sp_list.as_json(self.site_id))

    async def _list_get(self, request: Request, site: str, list: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        body = sp_list.as_json(self.site_id)
        if "columns" in request.query.get("$expand", ""):
            body["columns"] = [c.as_json() for c in sp_list.columns.values()]
        return Reply(200, body)

    async def _columns_list(self, request: Request, site: str, list: str) -> Reply:
        self._check_site(site)
        return Reply(200, {"value": [c.as_json() for c in self.get_list(list).columns.values()]})

    async def _columns_create(self, request: Request, site: str, list: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        column = _column_from_json(request.json())
        if column.name in sp_list.columns or column.name in BUILTIN_FIELDS:
            raise GraphError(409, "nameAlreadyExists", f"A field with the name '{column.name}' already exists.")
        if column.indexed:
            self._check_can_index(sp_list)
        sp_list.columns[column.name] = column
        return Reply(201, column.as_json())

    def _check_can_index(self, sp_list: SpList) -> None:
        if sum(c.indexed for c in sp_list.columns.values()) >= MAX_INDEXES:
            raise GraphError(400, "invalidRequest", f"A list can have at most {MAX_INDEXES} indexed columns.")
        if len(sp_list.items) > self.list_view_threshold:
            raise GraphError(400, "invalidRequest", "The attempted operation is prohibited because it exceeds the list "
                                                    "view threshold.")

    async def _columns_update(self, request: Request, site: str, list: str, column: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        target = next((c for c in sp_list.columns.values() if column in (c.id, c.name)), None)
        if target is None:
            raise GraphError(404, "itemNotFound", "Column not found.")
        body = request.json()
        if body.get("indexed") and not target.indexed:
            self._check_can_index(sp_list)
        if "indexed" in body:
            target.indexed = bool(body["indexed"])
        return Reply(200, target.as_json())

    def _item_json(self, sp_list: SpList, item: Item, *, expand: bool, request: Request) -> dict:
        body = {"@odata.etag": item.etag, "eTag": item.etag, "id": str(item.id),
                "createdDateTime": _iso(item.created), "lastModifiedDateTime": _iso(item.modified),
                "webUrl": f"https://fake.sharepoint.com/sites/claqueta/Lists/{quote(sp_list.display_name)}/"
                          f"DispForm.aspx?ID={item.id}",
                "contentType": {"id": "0x0100", "name": "Item"},
                "parentReference": {"id": sp_list.id, "siteId": self.site_id}}
        if expand:
            body["fields"] = self._fields_json(item)
        return body

    @staticmethod
    def _fields_json(item: Item) -> dict:
        return {"@odata.etag": item.etag, "id": str(item.id), "ContentType": "Item",
                "Created": _iso(item.created), "Modified": _iso(item.modified), **item.fields}

    def _validate_fields(self, sp_list: SpList, fields: dict) -> dict:
        clean = {}
        for name, value in fields.items():
            if name.startswith("@odata"):
                continue
            column = sp_list.columns.get(name)
            if column is None:
                raise GraphError(400, "invalidRequest", f"Field '{name}' is not recognized")
            if column.kind == "text" and isinstance(value, str):
                limit = MULTI_LINE_MAX if column.multi_line else SINGLE_LINE_MAX
                if len(value) > limit:
                    raise GraphError(400, "invalidRequest",
                                     f"The value of field '{name}' exceeds the maximum length of {limit} characters.")
            clean[name] = value
        return clean

    async def _items_create(self, request: Request, site: str, list: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        fields = request.json().get("fields")
        if not isinstance(fields, dict):
            raise GraphError(400, "invalidRequest", "Invalid request: 'fields' is required.")
        now = _now()
        item = Item(sp_list.next_id, str(uuid.uuid4()), 1, self._validate_fields(sp_list, fields), now, now)
        sp_list.next_id += 1
        sp_list.items[item.id] = item
        return Reply(201, self._item_json(sp_list, item, expand=True, request=request))

    def _find_item(self, sp_list: SpList, item: str) -> Item:
        found = sp_list.items.get(int(item)) if item.isdigit() else None
        if found is None:
            raise GraphError(404, "itemNotFound", "The specified list item was not found.")
        return found

    async def _items_get(self, request: Request, site: str, list: str, item: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        found = self._find_item(sp_list, item)
        return Reply(200, self._item_json(sp_list, found, expand="fields" in request.query.get("$expand", ""),
                                          request=request), {"ETag": found.etag})

    async def _items_fields(self, request: Request, site: str, list: str, item: str) -> Reply:
        self._check_site(site)
        return Reply(200, self._fields_json(self._find_item(self.get_list(list), item)))

    def _check_if_match(self, request: Request, found: Item) -> None:
        if_match = request.headers.get("if-match")
        if if_match and if_match.strip() != "*" and _unquote_etag(if_match) != _unquote_etag(found.etag):
            raise GraphError(412, "resourceModified", "The resource has changed since the caller last read it; "
                                                      "usually an eTag mismatch")

    async def _items_update(self, request: Request, site: str, list: str, item: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        found = self._find_item(sp_list, item)
        self._check_if_match(request, found)
        found.fields.update(self._validate_fields(sp_list, request.json()))
        found.version += 1
        found.modified = _now()
        return Reply(200, self._fields_json(found), {"ETag": found.etag})

    async def _items_delete(self, request: Request, site: str, list: str, item: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        found = self._find_item(sp_list, item)
        self._check_if_match(request, found)
        del sp_list.items[found.id]
        return Reply(204)

    async def _items_list(self, request: Request, site: str, list: str) -> Reply:
        self._check_site(site)
        sp_list = self.get_list(list)
        query = request.query
        clauses = parse_filter(query["$filter"]) if query.get("$filter") else []
        order = []
        for part in filter(None, (p.strip() for p in query.get("$orderby", "").split(","))):
            match = re.fullmatch(r"fields/(\w+)(?:\s+(asc|desc))?", part)
            if not match:
                raise GraphError(400, "invalidRequest", "Invalid orderby clause")
            order.append((match[1], match[2] == "desc"))
        referenced = [c[0] for c in clauses] + [o[0] for o in order]
        not_indexed = [name for name in referenced if not sp_list.is_indexed(name)]
        if not_indexed:
            # Graph refuses a non-indexed filter outright unless the caller accepts the risk;
            # with the Prefer header it works until the list passes the list view threshold.
            if PREFER_NON_INDEXED not in request.headers.get("prefer", ""):
                raise GraphError(400, "invalidRequest",
                                 f"Field '{not_indexed[0]}' cannot be referenced in filter or orderby as it is not "
                                 f"indexed. Provide the 'Prefer: {PREFER_NON_INDEXED}' header to allow this, but be "
                                 f"warned that such queries may fail on large lists.")
            if len(sp_list.items) > self.list_view_threshold:
                raise GraphError(400, "invalidRequest", "The attempted operation is prohibited because it exceeds "
                                                        "the list view threshold.")
        for name in referenced:
            if name not in sp_list.columns and name not in BUILTIN_FIELDS:
                raise GraphError(400, "invalidRequest", f"Field '{name}' is not recognized")
        items = [i for i in sp_list.items.values()
                 if all(_compare(self._field_value(i, f), op, v) for f, op, v in clauses)]
        for name, desc in reversed(order):
            items.sort(key=lambda i, n=name: (self._field_value(i, n) is None, self._field_value(i, n) or ""),
                       reverse=desc)
        top = int(query.get("$top", DEFAULT_PAGE))
        if top < 1 or top > 5000:
            raise GraphError(400, "invalidRequest", "Invalid $top value.")
        offset = 0
        if "$skiptoken" in query:
            try:
                offset = json.loads(base64.urlsafe_b64decode(query["$skiptoken"]))["o"]
            except (ValueError, KeyError) as exc:
                raise GraphError(400, "invalidRequest", "Invalid skip token.") from exc
        page = items[offset:offset + top]
        expand = "fields" in query.get("$expand", "")
        body: dict[str, Any] = {"value": [self._item_json(sp_list, i, expand=expand, request=request) for i in page]}
        if offset + top < len(items):
            token = base64.urlsafe_b64encode(json.dumps({"o": offset + top, "n": uuid.uuid4().hex[:8]}).encode()).decode()
            next_query = {k: v for k, v in query.items() if k != "$skiptoken"}
            next_query["$skiptoken"] = token
            body["@odata.nextLink"] = f"{request.base}{request.path}?{urlencode(next_query, quote_via=quote, safe='$/,')}"
        return Reply(200, body)

    @staticmethod
    def _field_value(item: Item, name: str) -> Any:
        if name in ("id", "ID"):
            return item.id
        return item.fields.get(name)

    # ── mail and calendar ──
    async def _send_mail(self, request: Request, mailbox: str) -> Reply:
        body = request.json()
        message = body.get("message", body.get("Message"))
        if not isinstance(message, dict):
            raise GraphError(400, "ErrorInvalidRequest", "Cannot read the request body: 'message' is required.")
        recipients = [r for key in ("toRecipients", "ccRecipients", "bccRecipients") for r in message.get(key) or []]
        if not recipients:
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be "
                                                            "sent because it contains no recipients.")
        save = body.get("saveToSentItems", body.get("SaveToSentItems", True))
        self.sent_mail.append({"mailbox": mailbox.lower(), "message": message, "saveToSentItems": save,
                               "at": time.monotonic()})
        return Reply(202)

    def _calendar(self, mailbox: str) -> list[dict]:
        return self.events.setdefault(mailbox.lower(), [])

    async def _events_create(self, request: Request, mailbox: str) -> Reply:
        body = request.json()
        for key in ("start", "end"):
            if not isinstance(body.get(key), dict) or "dateTime" not in body[key]:
                raise GraphError(400, "ErrorInvalidRequest", f"The '{key}' property is required.")
        calendar = self._calendar(mailbox)
        transaction = body.get("transactionId")
        if transaction:
            for existing in calendar:
                if existing.get("transactionId") == transaction:
                    return Reply(201, existing)
        event_id = "AAMk" + uuid.uuid4().hex
        event = {**body, "id": event_id, "iCalUId": "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex,
                 "createdDateTime": _iso(_now()), "lastModifiedDateTime": _iso(_now()),
                 "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
                 "organizer": {"emailAddress": {"address": mailbox}},
                 "showAs": body.get("showAs", "busy"), "isCancelled": False}
        if body.get("isOnlineMeeting"):
            event["onlineMeetingProvider"] = body.get("onlineMeetingProvider", "teamsForBusiness")
            event["onlineMeeting"] = {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{uuid.uuid4().hex}"
                                                 f"%40thread.v2/0"}
        calendar.append(event)
        return Reply(201, event)

    async def _events_list(self, request: Request, mailbox: str) -> Reply:
        return Reply(200, {"value": list(self._calendar(mailbox))})

    def _find_event(self, mailbox: str, event_id: str) -> dict:
        for event in self._calendar(mailbox):
            if event["id"] == event_id:
                return event
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    async def _events_get(self, request: Request, mailbox: str, event: str) -> Reply:
        return Reply(200, self._find_event(mailbox, event))

    async def _events_delete(self, request: Request, mailbox: str, event: str) -> Reply:
        self._calendar(mailbox).remove(self._find_event(mailbox, event))
        return Reply(204)

    async def _get_schedule(self, request: Request, mailbox: str) -> Reply:
        body = request.json()
        schedules = body.get("schedules") or body.get("Schedules")
        start_raw = body.get("startTime") or body.get("StartTime")
        end_raw = body.get("endTime") or body.get("EndTime")
        if not schedules or not start_raw or not end_raw:
            raise GraphError(400, "ErrorInvalidRequest", "schedules, startTime and endTime are required.")
        interval = int(body.get("availabilityViewInterval") or body.get("AvailabilityViewInterval") or 30)
        zone = start_raw.get("timeZone") or "UTC"
        start, end = _moment(start_raw), _moment(end_raw)
        results = []
        for who in schedules:
            busy = [e for events in self.events.values() for e in events if _involves(e, who, events is self.events.get(who.lower()))]
            busy = [e for e in busy if not e.get("isCancelled") and _moment(e["start"]) < end and _moment(e["end"]) > start]
            items = [{"isPrivate": False, "status": e.get("showAs", "busy"), "subject": e.get("subject", ""),
                      "location": (e.get("location") or {}).get("displayName", ""),
                      "start": _in_zone(_moment(e["start"]), zone), "end": _in_zone(_moment(e["end"]), zone)}
                     for e in busy]
            view, slot = [], start
            while slot < end:
                slot_end = slot + timedelta(minutes=interval)
                codes = [AVAILABILITY.get(e.get("showAs", "busy"), "2") for e in busy
                         if _moment(e["start"]) < slot_end and _moment(e["end"]) > slot]
                view.append(max(codes) if codes else "0")
                slot = slot_end
            results.append({"scheduleId": who, "availabilityView": "".join(view), "scheduleItems": items,
                            "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                                             "startTime": "08:30:00.0000000", "endTime": "17:30:00.0000000",
                                             "timeZone": {"name": "SA Pacific Standard Time"}}})
        return Reply(200, {"value": results})

    # ── files ──
    def _check_drive(self, drive: str) -> None:
        if drive != self.drive_id:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")

    def _resolve(self, target: str, rel: str | None, *, create_missing_parents: bool = False) -> DriveItem | None:
        current = self.drive_items["root"] if target == "root" else self.drive_items.get(target.split("/", 1)[1])
        if current is None:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        for name in [p for p in (rel or "").strip("/").split("/") if p]:
            child = self._child(current.id, name)
            if child is None:
                if not create_missing_parents:
                    return None
                child = DriveItem(uuid.uuid4().hex.upper(), name, current.id, True)
                self.drive_items[child.id] = child
            current = child
        return current

    def _child(self, parent_id: str, name: str) -> DriveItem | None:
        return next((i for i in self.drive_items.values()
                     if i.parent_id == parent_id and i.name.lower() == name.lower()), None)

    def _path_of(self, item: DriveItem) -> str:
        names = []
        while item.parent_id is not None:
            names.append(item.name)
            item = self.drive_items[item.parent_id]
        return "/" + "/".join(reversed(names))

    def _drive_item_json(self, item: DriveItem) -> dict:
        parent_path = self._path_of(self.drive_items[item.parent_id]) if item.parent_id else ""
        body = {"id": item.id, "name": item.name, "createdDateTime": _iso(item.created),
                "eTag": f'"{{{item.id}}},{item.etag_version}"', "cTag": f'"c:{{{item.id}}},{item.etag_version}"',
                "webUrl": "https://fake.sharepoint.com/sites/claqueta/Shared%20Documents" + quote(self._path_of(item)),
                "parentReference": {"driveId": self.drive_id, "driveType": "documentLibrary",
                                    "id": item.parent_id, "path": f"/drives/{self.drive_id}/root:{parent_path}"}}
        if item.is_folder:
            body["folder"] = {"childCount": sum(1 for i in self.drive_items.values() if i.parent_id == item.id)}
        else:
            body["size"] = len(item.content)
            body["file"] = {"mimeType": "application/octet-stream"}
        return body

    async def _drive_item_get(self, request: Request, drive: str, target: str, rel: str | None = None) -> Reply:
        self._check_drive(drive)
        item = self._resolve(target, rel)
        if item is None:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        return Reply(200, self._drive_item_json(item))

    async def _children_list(self, request: Request, drive: str, target: str, rel: str | None = None) -> Reply:
        self._check_drive(drive)
        parent = self._resolve(target, rel)
        if parent is None:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        return Reply(200, {"value": [self._drive_item_json(i) for i in self.drive_items.values() if i.parent_id == parent.id]})

    async def _children_create(self, request: Request, drive: str, target: str, rel: str | None = None) -> Reply:
        self._check_drive(drive)
        parent = self._resolve(target, rel)
        if parent is None or not parent.is_folder:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        body = request.json()
        name = body.get("name")
        if not name or "folder" not in body:
            raise GraphError(400, "invalidRequest", "A folder needs 'name' and 'folder'.")
        conflict = body.get("@microsoft.graph.conflictBehavior", "fail")
        existing = self._child(parent.id, name)
        if existing is not None:
            if conflict == "fail":
                raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
            if conflict == "replace":
                return Reply(200, self._drive_item_json(existing))
            name = self._free_name(parent.id, name)
        folder = DriveItem(uuid.uuid4().hex.upper(), name, parent.id, True)
        self.drive_items[folder.id] = folder
        return Reply(201, self._drive_item_json(folder))

    def _free_name(self, parent_id: str, name: str) -> str:
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        n = 1
        while self._child(parent_id, f"{stem} {n}{dot}{ext}"):
            n += 1
        return f"{stem} {n}{dot}{ext}"

    async def _create_link(self, request: Request, drive: str, item_id: str) -> Reply:
        self._check_drive(drive)
        item = self.drive_items.get(item_id)
        if item is None:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        body = request.json()
        kind, scope = body.get("type", "view"), body.get("scope", "organization")
        if kind not in ("view", "edit", "embed"):
            raise GraphError(400, "invalidRequest", "Invalid link type.")
        link_id = f"{item.id}-{kind}-{scope}"
        return Reply(201, {"id": link_id, "roles": ["write" if kind == "edit" else "read"],
                           "link": {"type": kind, "scope": scope, "preventsDownload": False,
                                    "webUrl": f"https://fake.sharepoint.com/:v:/s/claqueta/{link_id}"}})

    async def _upload_create(self, request: Request, drive: str, target: str, rel: str) -> Reply:
        self._check_drive(drive)
        parent_rel, _, name = rel.strip("/").rpartition("/")
        parent = self._resolve(target, parent_rel, create_missing_parents=True)
        assert parent is not None
        item = request.json().get("item") or {}
        conflict = item.get("@microsoft.graph.conflictBehavior", "replace")
        if conflict == "fail" and self._child(parent.id, name):
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        session = UploadSession(uuid.uuid4().hex, drive, parent.id, name, conflict, _now() + self.upload_session_ttl)
        self.upload_sessions[session.id] = session
        # The real uploadUrl is on the tenant's SharePoint host, not Graph's: "localhost" here
        # plays that part, so a client whose allowed hosts are Graph's host sends no token to it.
        port = request.base.split(":")[2].split("/")[0]
        return Reply(200, {"@odata.type": "#microsoft.graph.uploadSession",
                           "uploadUrl": f"http://localhost:{port}{UPLOAD_PREFIX}{session.id}",
                           "expirationDateTime": _iso(session.expires), "nextExpectedRanges": ["0-"]})

    async def _upload_endpoint(self, method: str, session_id: str, headers: dict[str, str], body: bytes) -> Reply:
        try:
            if "authorization" in headers:
                raise GraphError(401, "unauthenticated", "The uploadUrl is pre-authenticated: do not send an "
                                                         "Authorization header with it.")
            session = self.upload_sessions.get(session_id)
            if session is None or session.expires <= _now():
                raise GraphError(404, "itemNotFound", "The upload session was not found or has expired.")
            if method == "GET":
                return Reply(200, {"expirationDateTime": _iso(session.expires), "nextExpectedRanges": session.next_ranges()})
            if method == "DELETE":
                del self.upload_sessions[session_id]
                return Reply(204)
            if method != "PUT":
                raise GraphError(405, "invalidRequest", "Method not allowed.")
            return self._upload_chunk(session, headers, body)
        except GraphError as exc:
            return _error_reply(exc)

    def _upload_chunk(self, session: UploadSession, headers: dict[str, str], body: bytes) -> Reply:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", headers.get("content-range", "").strip())
        if not match:
            raise GraphError(400, "invalidRequest", "Content-Range header is missing or malformed.")
        first, last, total = (int(g) for g in match.groups())
        if session.size is None:
            session.size = total
        if total != session.size:
            raise GraphError(400, "invalidRequest", "The total size does not match the first fragment's.")
        length = last - first + 1
        if length != len(body) or int(headers.get("content-length", len(body))) != len(body):
            raise GraphError(400, "invalidRequest", "Content-Length does not match Content-Range.")
        if length > MAX_CHUNK:
            raise GraphError(413, "invalidRequest", "A fragment must be smaller than 60 MiB.")
        if first != len(session.received) or last >= total:
            raise GraphError(416, "invalidRange", "The uploaded fragment does not match the next expected range.",
                             {"Content-Type": "application/json"})
        is_last = last == total - 1
        if not is_last and length % CHUNK_UNIT:
            raise GraphError(400, "invalidRequest", "Fragments other than the last must be a multiple of 320 KiB "
                                                    "(327,680 bytes).")
        session.received.extend(body)
        if not is_last:
            return Reply(202, {"expirationDateTime": _iso(session.expires), "nextExpectedRanges": session.next_ranges()})
        del self.upload_sessions[session.id]
        existing = self._child(session.parent_id, session.name)
        if existing is not None and session.conflict == "replace":
            existing.content = bytes(session.received)
            existing.etag_version += 1
            return Reply(200, self._drive_item_json(existing))
        name = self._free_name(session.parent_id, session.name) if existing is not None else session.name
        item = DriveItem(uuid.uuid4().hex.upper(), name, session.parent_id, False, bytes(session.received))
        self.drive_items[item.id] = item
        return Reply(201, self._drive_item_json(item))

    def file_content(self, path: str) -> bytes | None:
        item = self._resolve("root", path)
        return None if item is None or item.is_folder else item.content

    # ── groups ──
    async def _calendar_get(self, request: Request, mailbox: str) -> Reply:
        return Reply(200, {"id": f"calendar-{mailbox.lower()}", "name": "Calendario", "canEdit": True,
                           "owner": {"name": mailbox, "address": mailbox}})

    async def _group_members(self, request: Request, group: str, kind: str) -> Reply:
        members = self.groups.get(group)
        if members is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{group}' does not exist.")
        top = int(request.query.get("$top", 100))
        offset = int(request.query.get("$skiptoken", "0") or 0)
        page = members[offset:offset + top]
        if not self.member_details:
            page = [{"@odata.type": m["@odata.type"], "id": m["id"]} for m in page]
        body: dict[str, Any] = {"value": page}
        if offset + top < len(members):
            next_query = {**request.query, "$skiptoken": str(offset + top)}
            body["@odata.nextLink"] = f"{request.base}{request.path}?{urlencode(next_query, quote_via=quote, safe='$/,')}"
        return Reply(200, body)


def _column_from_json(raw: dict) -> Column:
    name = raw.get("name")
    if not name or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise GraphError(400, "invalidRequest", f"Invalid column name: {name!r}")
    kinds = [k for k in ("text", "number", "boolean", "dateTime", "choice", "personOrGroup", "lookup", "currency",
                         "hyperlinkOrPicture") if k in raw]
    kind = kinds[0] if kinds else "text"
    multi = bool(kind == "text" and (raw.get("text") or {}).get("allowMultipleLines"))
    return Column(name, kind, bool(raw.get("indexed")), multi, raw=raw)


def _moment(value: dict) -> datetime:
    moment = datetime.fromisoformat(value["dateTime"].rstrip("Z")[:26])
    zone = value.get("timeZone") or "UTC"
    return moment.replace(tzinfo=ZoneInfo("UTC") if zone in ("UTC", "Z") else ZoneInfo(zone)) if moment.tzinfo is None else moment


def _in_zone(moment: datetime, zone: str) -> dict:
    local = moment.astimezone(ZoneInfo("UTC") if zone in ("UTC", "Z") else ZoneInfo(zone))
    return {"dateTime": local.replace(tzinfo=None).isoformat(timespec="microseconds") + "0", "timeZone": zone}


def _involves(event: dict, who: str, in_own_calendar: bool) -> bool:
    if in_own_calendar:
        return True
    who = who.lower()
    return any(((a.get("emailAddress") or {}).get("address") or "").lower() == who for a in event.get("attendees") or [])


def _error_reply(exc: GraphError) -> Reply:
    return Reply(exc.status, {"error": {"code": exc.code, "message": exc.message,
                                        "innerError": {"request-id": str(uuid.uuid4()), "date": _iso(_now())}}},
                 dict(exc.headers))


def _batch_error(sub: dict, exc: GraphError) -> dict:
    reply = _error_reply(exc)
    return {"id": sub.get("id"), "status": reply.status, "headers": {"Content-Type": "application/json"}, "body": reply.body}


def _to_http(reply: Reply) -> web.Response:
    headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-type"}
    if isinstance(reply.body, (dict, list)):
        return web.Response(status=reply.status, body=json.dumps(reply.body).encode(), headers=headers,
                            content_type="application/json")
    return web.Response(status=reply.status, body=reply.body or b"", headers=headers)


# ── its own process (bench/run.py --backend graph) ───────────────────────────────────────
def people_groups(people_file) -> dict[str, list[dict]]:
    """One Entra group per role of the people file ("grupo-<role>") and one of the areas' directors."""
    import yaml

    people = yaml.safe_load(open(people_file, encoding="utf-8"))
    groups: dict[str, list[dict]] = {}
    for person in people["people"]:
        for role in person.get("roles", []):
            groups.setdefault(f"grupo-{role.lower()}", []).append(
                {"id": person["id"], "displayName": person["name"], "mail": person.get("email", "")})
    groups["grupo-director"] = [{"id": a["director"], "displayName": p["name"], "mail": p.get("email", "")}
                                for a in people["areas"].values() for p in people["people"] if p["id"] == a["director"]]
    return groups


async def provisioned(graph: FakeGraph, people_file) -> dict[str, str]:
    """Create the store's lists (deploy.sharepoint.provision through the real client) and the role groups;
    returns GRAPH_ROLE_GROUPS (role → group id)."""
    from config.settings import Settings
    from deploy.sharepoint import provision
    from graph.client import build_graph_client, close_graph_client

    roles = {}
    for group_id, members in people_groups(people_file).items():
        graph.add_group(group_id, members)
        if group_id != "grupo-director":
            roles[group_id.removeprefix("grupo-").upper()] = group_id
    client = build_graph_client(Settings(_env_file=None, graph_base_url=graph.base_url,
                                         graph_static_token=graph.token, sharepoint_site_id=graph.site_id))
    try:
        await provision(client, graph.site_id)
    finally:
        await close_graph_client(client)
    return roles


def _control_app(graph: FakeGraph) -> web.Application:
    """Loopback control of a FakeGraph in another process: its call records, latency and mail/event counts."""

    async def calls(request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        return web.json_response({"total": len(graph.calls), "calls": [
            {"method": c.method, "path": c.path, "route": c.route, "status": c.status, "at": c.at,
             "in_batch": c.in_batch} for c in graph.calls[since:]]})

    async def latency(request: web.Request) -> web.Response:
        graph.latency = float((await request.json())["ms"]) / 1000
        return web.json_response({"latency_ms": graph.latency * 1000})

    async def counts(request: web.Request) -> web.Response:
        return web.json_response({"sent_mail": len(graph.sent_mail),
                                  "events": sum(len(v) for v in graph.events.values()),
                                  "items": {x.display_name: len(x.items) for x in graph.lists.values()},
                                  "lists": {x.id: x.display_name for x in graph.lists.values()}})

    app = web.Application()
    app.router.add_get("/calls", calls)
    app.router.add_post("/latency", latency)
    app.router.add_get("/counts", counts)
    return app


async def _serve_alone(port: int, latency_ms: float, people_file) -> None:
    graph = FakeGraph()
    graph.port = port
    async with graph:
        roles = await provisioned(graph, people_file)
        graph.calls.clear()
        graph.route_counts.clear()
        graph.latency = latency_ms / 1000  # after provisioning, which is not what is measured
        runner = web.AppRunner(_control_app(graph), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        control = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(json.dumps({"base_url": graph.base_url, "token": graph.token, "site_id": graph.site_id,
                          "drive_id": graph.drive_id, "role_groups": roles,
                          "control_url": f"http://127.0.0.1:{control}"}), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Run FakeGraph on 127.0.0.1, lists provisioned and role groups "
                                                 "made from the people file; prints its base url and token as JSON")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every HTTP call")
    parser.add_argument("--people-file", type=Path,
                        default=Path(__file__).resolve().parents[1] / "config" / "people.example.yaml")
    cli = parser.parse_args()
    try:
        asyncio.run(_serve_alone(cli.port, cli.latency_ms, cli.people_file))
    except KeyboardInterrupt:
        pass
