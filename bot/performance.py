"""Fixes for botbuilder 4.17.1's per-turn cost: O(1) retry-code lookups and connector clients reused per service URL."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from botframework.connector.auth._built_in_bot_framework_authentication import _BuiltinBotFrameworkAuthentication
from msrest.universal_http.requests import ClientRetryPolicy

log = logging.getLogger(__name__)

# Service URLs are a handful per deployment (Teams regions); the bound only protects local mode,
# where any caller may name any serviceUrl.
MAX_CACHED_CLIENTS = 64


def make_retry_codes_constant_time() -> None:
    """msrest builds `[i for i in range(999) if i not in self.safe_codes]` over a 502-element list for every
    client (≈12 ms of CPU). The same membership as a frozenset makes that loop O(999); semantics unchanged."""
    if not isinstance(ClientRetryPolicy.safe_codes, frozenset):
        ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)


class ConnectorClientCache:
    """One ConnectorClient (and with it one requests session, so kept-alive connections) per
    (app id, service URL, audience), shared by every turn and every proactive send."""

    def __init__(self, max_clients: int = MAX_CACHED_CLIENTS) -> None:
        self._clients: OrderedDict[tuple, ConnectorClient] = OrderedDict()
        self._max = max_clients
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._clients)

    async def get(self, key: tuple, build) -> ConnectorClient:
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        async with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = await build()
                _leave_status_retries_to_send_with_retry(client)
                self._clients[key] = client
                while len(self._clients) > self._max:
                    _, evicted = self._clients.popitem(last=False)
                    await _close(evicted)
            return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await _close(client)


def _leave_status_retries_to_send_with_retry(client: ConnectorClient) -> None:
    # urllib3 would silently retry PUTs on 502/504 (up to 3 times, sleeping in a worker thread) and then
    # hide the status inside a RetryError; bot.proactive.send_with_retry owns status retries. Connection
    # retries (nothing was sent yet) stay with urllib3. This client's policy only, not the class.
    policy = getattr(getattr(client, "config", None), "retry_policy", None)
    if policy is not None and hasattr(policy, "policy"):
        policy.policy.status_forcelist = frozenset()


async def _close(client: ConnectorClient) -> None:
    try:
        await client.__aexit__(None, None, None)
    except Exception:  # closing is best effort: a half-open pool is collected anyway
        log.debug("closing a connector client failed", exc_info=True)


class _CachingConnectorFactory(ConnectorFactory):
    def __init__(self, inner: ConnectorFactory, cache: ConnectorClientCache, app_id: str | None,
                 default_audience: str | None) -> None:
        self._inner = inner
        self._cache = cache
        self._app_id = app_id or ""
        self._default_audience = default_audience

    async def create(self, service_url: str, audience: str = None) -> ConnectorClient:
        # A proactive send passes no audience where a turn passes the default one: same credentials.
        audience = audience or self._default_audience
        return await self._cache.get(
            (self._app_id, service_url, audience), lambda: self._inner.create(service_url, audience)
        )


class CachingBotFrameworkAuthentication(BotFrameworkAuthentication):
    """Delegates to botbuilder's authentication; hands out connector factories backed by one client cache,
    and one user-token client per app id."""

    def __init__(self, inner: BotFrameworkAuthentication, cache: ConnectorClientCache | None = None) -> None:
        self._inner = inner
        self.connector_clients = cache or ConnectorClientCache()
        self._user_token_clients: dict[str, UserTokenClient] = {}

    def _wrap(self, factory: ConnectorFactory, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        if factory is None or isinstance(factory, _CachingConnectorFactory):
            return factory
        return _CachingConnectorFactory(
            factory,
            self.connector_clients,
            _BuiltinBotFrameworkAuthentication.get_app_id(claims_identity),
            self._inner.get_originating_audience(),
        )

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await self._inner.authenticate_request(activity, auth_header)
        result.connector_factory = self._wrap(result.connector_factory, result.claims_identity)
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str):
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._wrap(self._inner.create_connector_factory(claims_identity), claims_identity)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = _BuiltinBotFrameworkAuthentication.get_app_id(claims_identity) or ""
        client = self._user_token_clients.get(app_id)
        if client is None:
            client = await self._inner.create_user_token_client(claims_identity)
            self._user_token_clients[app_id] = client
        return client

    def create_bot_framework_client(self) -> Any:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)

    async def close(self) -> None:
        await self.connector_clients.close()
        self._user_token_clients.clear()
