"""Access-token providers for the Graph client: app-only tokens from msal, or a fixed token for loopback tests."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
AUTHORITY_HOST = "https://login.microsoftonline.com"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class GraphAuthError(RuntimeError):
    """No token could be obtained (bad credential, tenant, consent), or a token would go where it must not."""


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(url: str) -> str:
    host = urlparse(url).hostname
    if not host:
        raise GraphAuthError(f"URL sin host: {url!r}")
    return host.lower()


def _checked_uri(uri: str, validator: AllowedHostsValidator) -> bool:
    """True when a token may be attached to a request to `uri`.

    A host outside the allowed list gets no token: that is how chunk PUTs to an upload
    session's `uploadUrl` (a SharePoint host, pre-authenticated) go out without
    `Authorization`, as Graph requires. Plain http is refused except on loopback, so a
    token never crosses the network in clear.
    """
    if not validator.is_url_host_valid(uri):
        return False
    parsed = urlparse(uri)
    if parsed.scheme != "https" and not is_loopback_host(parsed.hostname):
        raise GraphAuthError(f"Solo se envían tokens por https: {uri}")
    return True


class StaticTokenProvider(AccessTokenProvider):
    """A fixed bearer token; only for a Graph stand-in on loopback (tests, local benchmarks)."""

    def __init__(self, token: str, base_url: str) -> None:
        host = host_of(base_url)
        if not is_loopback_host(host):
            raise GraphAuthError(
                f"GRAPH_STATIC_TOKEN solo se admite con GRAPH_BASE_URL en loopback "
                f"(127.0.0.1, localhost, ::1); la URL configurada apunta a {host!r}."
            )
        if not token:
            raise GraphAuthError("GRAPH_STATIC_TOKEN está vacío.")
        self._token = token
        self._validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:
        return self._token if _checked_uri(uri, self._validator) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


class MsalTokenProvider(AccessTokenProvider):
    """App-only tokens (client credentials) from msal's ConfidentialClientApplication.

    msal keeps the token in its in-memory cache and only goes to Entra ID when it is near
    expiry, so asking on every request is cheap. The msal call is blocking (requests), so it
    runs in a worker thread. The application is built on first use: building it fetches the
    tenant's OpenID metadata, which must not happen at import or in settings validation.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        certificate_path: Path | None = None,
        certificate_thumbprint: str | None = None,
        base_url: str = "https://graph.microsoft.com/v1.0",
        authority_host: str = AUTHORITY_HOST,
        app_factory: Callable[..., Any] | None = None,
    ) -> None:
        if bool(client_secret) == bool(certificate_path):
            raise GraphAuthError("Indique GRAPH_CLIENT_SECRET o GRAPH_CERTIFICATE_PATH (uno de los dos).")
        if certificate_path is not None:
            if not certificate_thumbprint:
                raise GraphAuthError("GRAPH_CERTIFICATE_THUMBPRINT es obligatorio con GRAPH_CERTIFICATE_PATH.")
            try:
                private_key = Path(certificate_path).read_text(encoding="utf-8")
            except OSError as exc:
                raise GraphAuthError(f"GRAPH_CERTIFICATE_PATH no se puede leer: {exc}") from exc
            self._credential: Any = {"private_key": private_key, "thumbprint": certificate_thumbprint}
        else:
            self._credential = client_secret
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._client_id = client_id
        self._app_factory = app_factory
        self._app: Any = None
        self._app_lock = threading.Lock()
        self._validator = AllowedHostsValidator([host_of(base_url)])

    def _application(self) -> Any:
        with self._app_lock:
            if self._app is None:
                if self._app_factory is not None:
                    factory = self._app_factory
                else:
                    import msal

                    factory = msal.ConfidentialClientApplication
                self._app = factory(self._client_id, client_credential=self._credential, authority=self._authority)
            return self._app

    def _acquire(self) -> str:
        result = self._application().acquire_token_for_client(scopes=[GRAPH_SCOPE])
        token = (result or {}).get("access_token")
        if not token:
            error = (result or {}).get("error", "sin_respuesta")
            description = (result or {}).get("error_description", "")
            raise GraphAuthError(f"Entra ID no entregó un token para Microsoft Graph: {error}: {description}")
        return token

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:
        if not _checked_uri(uri, self._validator):
            return ""
        return await asyncio.to_thread(self._acquire)

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator
