"""Builds the authenticated msgraph-sdk client, counts its HTTP calls, and checks the Graph settings at start-up."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from kiota_abstractions.authentication import AccessTokenProvider, BaseBearerTokenAuthenticationProvider
from kiota_abstractions.request_information import RequestInformation
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware.middleware import BaseMiddleware
from kiota_http.middleware.options import RetryHandlerOption, UrlReplaceHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import APIVersion, GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from msgraph_core.middleware.options import GraphTelemetryHandlerOption
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from config.settings import Settings, SettingsError
from graph.auth import MsalTokenProvider, StaticTokenProvider, is_loopback_host

# ── Retries ──────────────────────────────────────────────────────────────────────────────
# kiota_http's RetryHandler (1.16) retries 429, 503 and 504 for EVERY method, POST and PATCH
# included; the only request it never re-sends is one whose Content-Type is
# application/octet-stream (a chunk PUT to an upload session). The delay is Retry-After when
# the response has one above zero (uncapped; the retry is skipped only if it is 180 s or
# more), otherwise 0.5 * 2**(n-1) s + up to 1 s of jitter + the option's `delay` (3 s by
# default: it is added to every backoff, it is not a cap), capped at 120 s.
#
# Duplicates this can cause, because Graph may have done the work before answering 503/504
# (a gateway timeout does not undo it):
#   - POST users/{mailbox}/sendMail: a second identical email (Graph has no idempotency key);
#   - POST .../events without transactionId: a second meeting (with one, Graph returns the
#     first event: always send transactionId);
#   - POST lists/{list}/items: a second list item (give items a unique key column and look
#     it up before creating again);
#   - POST drive children / createLink: a 409 nameAlreadyExists or the same link (harmless);
#   - PATCH items/{id}/fields with If-Match: the retry gets 412 because the first attempt
#     changed the eTag: treat "412 right after a 503/504" as "maybe applied", re-read, compare.
# The dispatcher of durable effects marks each effect done by its id for exactly this reason.
DEFAULT_MAX_RETRIES = 3
# Base delay added to every backoff when there is no Retry-After (the SDK's default is 3 s).
DEFAULT_RETRY_BASE_DELAY = 1.0
REQUEST_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class GraphCallCounter(BaseMiddleware):
    """Counts every HTTP request that actually leaves the client (retries included).

    It sits last in the middleware chain, after the retry handler, so a request throttled
    twice counts three times: that is the number Graph's throttling budget sees.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.by_route: Counter[str] = Counter()
        self.log: list[tuple[str, str, int]] = []

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        response = await super().send(request, transport)
        self.total += 1
        self.by_route[f"{request.method} {_route_shape(request.url.path)}"] += 1
        self.log.append((request.method, str(request.url), response.status_code))
        return response

    def reset(self) -> None:
        self.total = 0
        self.by_route.clear()
        self.log.clear()


_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-fA-F-]{32,36}|b![\w-]+|[^/]+,[^/]+,[^/]+|[^/@]+@[^/]+)$")


def _route_shape(path: str) -> str:
    """`/v1.0/sites/x,y,z/lists/abc/items/7/fields` → `/v1.0/sites/{id}/lists/{id}/items/{id}/fields`."""
    return "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/"))


def token_provider_for(settings: Settings) -> AccessTokenProvider:
    """The static token on loopback (tests), otherwise msal with the secret or the certificate."""
    static = settings.graph_static_token.get_secret_value()
    if static:
        return StaticTokenProvider(static, settings.graph_base_url)
    secret = settings.graph_client_secret.get_secret_value()
    return MsalTokenProvider(
        settings.graph_tenant_id,
        settings.graph_client_id,
        client_secret=secret or None,
        certificate_path=None if secret else settings.graph_certificate_path,
        certificate_thumbprint=settings.graph_certificate_thumbprint or None,
        base_url=settings.graph_base_url,
    )


def build_graph_client(
    settings: Settings,
    *,
    token_provider: AccessTokenProvider | None = None,
    counter: GraphCallCounter | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    retry_base_delay: float = DEFAULT_RETRY_BASE_DELAY,
) -> GraphServiceClient:
    """A GraphServiceClient on settings.graph_base_url with the SDK's middleware and our retry limits.

    Pass `counter` to count the HTTP calls (tests, benchmarks). Close the client's HTTP pool
    with `await client.request_adapter._http_client.aclose()` (see `close_graph_client`).
    """
    provider = token_provider or token_provider_for(settings)
    base_url = settings.graph_base_url.rstrip("/")
    options = {
        RetryHandlerOption.get_key(): RetryHandlerOption(delay=retry_base_delay, max_retries=max_retries),
        # The SDK's own adapter sets these two; building the pipeline ourselves must keep them.
        UrlReplaceHandlerOption.get_key(): UrlReplaceHandlerOption(
            enabled=True, replacement_pairs={"/users/me-token-to-replace": "/me"}
        ),
    }
    middleware: list[BaseMiddleware] = KiotaClientFactory.get_default_middleware(options)
    middleware.append(GraphTelemetryHandler(GraphTelemetryHandlerOption(api_version=APIVersion.v1)))
    if counter is not None:
        middleware.append(counter)
    http_client = GraphClientFactory.create_with_custom_middleware(
        middleware, client=httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, http2=True)
    )
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider), client=http_client)
    adapter.base_url = base_url
    return GraphServiceClient(request_adapter=adapter)


async def close_graph_client(client: GraphServiceClient) -> None:
    await client.request_adapter._http_client.aclose()


@dataclass(frozen=True)
class BatchAnswer:
    """One sub-response of a $batch: its own status, headers and JSON body (a dict, or None)."""

    status: int
    headers: dict[str, str]
    body: Any


async def send_batch(client: GraphServiceClient, requests: dict[str, RequestInformation]) -> dict[str, BatchAnswer]:
    """POST up to 20 requests as one /$batch call; answers keyed by the ids given.

    Built with msgraph-core's BatchRequestContent but read as raw JSON, because msgraph-core
    1.5.2's BatchResponseItem reads `body` as base64 bytes and drops the JSON objects Graph
    actually returns (so `response_body()` fails for every JSON answer), and
    `add_request_information(info, request_id)` silently replaces the id with a UUID. No `dependsOn`:
    msgraph-core writes `depends_on`, which Graph ignores. The whole batch is retried by the
    retry handler on 429/503/504 (re-running every sub-request); a sub-request answered 429
    carries its own Retry-After and must be re-sent by the caller.
    """
    if len(requests) > BatchRequestContent.MAX_REQUESTS:
        raise ValueError(f"Graph takes at most {BatchRequestContent.MAX_REQUESTS} requests per $batch")
    content = BatchRequestContent()
    for request_id, info in requests.items():
        # add_request_information(info, id) ignores the id (BatchRequestItem makes its own first).
        content.add_request(request_id, BatchRequestItem(info, id=request_id))
    info = await client.batch.to_post_request_information(content)
    raw = await client.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
    answers = {}
    for entry in json.loads(raw or b"{}").get("responses", []):
        answers[entry["id"]] = BatchAnswer(int(entry["status"]), entry.get("headers") or {}, entry.get("body"))
    return answers


# ── Start-up validation ──────────────────────────────────────────────────────────────────
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_THUMBPRINT = re.compile(r"^[0-9a-fA-F]{40}$")


def _is_guid(value: str) -> bool:
    return bool(_GUID.match(value or ""))


def validate_graph_settings(settings: Settings) -> None:
    """Raise SettingsError naming every missing or malformed Graph setting (all at once, so one restart fixes them).

    Site id: Graph's composite `hostname,siteCollectionId,webId` (the id `GET /sites/{host}:/{path}` returns).
    """
    problems: list[str] = []
    base = urlparse(settings.graph_base_url or "")
    loopback = is_loopback_host(base.hostname)
    if base.scheme not in ("http", "https") or not base.hostname:
        problems.append(f"GRAPH_BASE_URL no es una URL válida: {settings.graph_base_url!r}")
    elif base.scheme != "https" and not loopback:
        problems.append("GRAPH_BASE_URL debe usar https (http solo se admite en loopback, para pruebas)")

    static = settings.graph_static_token.get_secret_value()
    if static and not loopback:
        problems.append("GRAPH_STATIC_TOKEN solo se admite con GRAPH_BASE_URL en loopback (127.0.0.1, localhost, ::1)")
    if not static:
        if not settings.graph_tenant_id:
            problems.append("GRAPH_TENANT_ID falta")
        elif not _is_guid(settings.graph_tenant_id):
            problems.append(f"GRAPH_TENANT_ID debe ser un GUID (id del inquilino): {settings.graph_tenant_id!r}")
        if not settings.graph_client_id:
            problems.append("GRAPH_CLIENT_ID falta")
        elif not _is_guid(settings.graph_client_id):
            problems.append(f"GRAPH_CLIENT_ID debe ser un GUID (id de la aplicación): {settings.graph_client_id!r}")
        secret = settings.graph_client_secret.get_secret_value()
        cert = settings.graph_certificate_path
        if not secret and not cert:
            problems.append("GRAPH_CLIENT_SECRET o GRAPH_CERTIFICATE_PATH falta (uno de los dos)")
        elif secret and cert:
            problems.append("GRAPH_CLIENT_SECRET y GRAPH_CERTIFICATE_PATH están ambos definidos: deje solo uno")
        elif cert:
            if not cert.is_file():
                problems.append(f"GRAPH_CERTIFICATE_PATH no es un archivo legible: {str(cert)!r}")
            elif "PRIVATE KEY" not in cert.read_text(encoding="utf-8", errors="replace"):
                problems.append("GRAPH_CERTIFICATE_PATH no contiene una clave privada PEM")
            if not _THUMBPRINT.match(settings.graph_certificate_thumbprint or ""):
                problems.append("GRAPH_CERTIFICATE_THUMBPRINT debe ser la huella SHA-1 del certificado (40 hexadecimales)")

    site = settings.sharepoint_site_id
    if not site:
        problems.append("SHAREPOINT_SITE_ID falta")
    else:
        parts = site.split(",")
        if len(parts) != 3 or not parts[0] or not _is_guid(parts[1]) or not _is_guid(parts[2]):
            problems.append(
                f"SHAREPOINT_SITE_ID debe tener la forma 'host,GUID-de-colección,GUID-de-sitio': {site!r}"
            )
    if not settings.office_mailbox:
        problems.append("OFFICE_MAILBOX falta")
    elif not (_EMAIL.match(settings.office_mailbox) or _is_guid(settings.office_mailbox)):
        problems.append(f"OFFICE_MAILBOX debe ser una dirección de correo o un id de usuario: {settings.office_mailbox!r}")
    if settings.outlook_originator_id and not _is_guid(settings.outlook_originator_id):
        problems.append(f"OUTLOOK_ORIGINATOR_ID debe ser un GUID: {settings.outlook_originator_id!r}")
    if problems:
        raise SettingsError("Configuración de Microsoft Graph inválida: " + "; ".join(problems) + ".")
