"""Bot Framework JWT checks made safe to run in the event loop: signing keys fetched off-loop, every failure one `Unauthorized`."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import requests
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticateRequestResult, BotFrameworkAuthentication
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor, _OpenIdMetadata

log = logging.getLogger(__name__)

KEY_FETCH_TIMEOUT_SECONDS = 10


class Unauthorized(Exception):
    """The request did not prove it comes from the Bot Connector; `reason` is safe to log (no token in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NonBlockingOpenIdMetadata(_OpenIdMetadata):
    """botbuilder's signing-key cache, but fetched with a timeout in a worker thread (botbuilder uses blocking
    `requests` inside the event loop, with no timeout), one fetch at a time, and an unknown key id answered
    as "no key" instead of IndexError so the hourly re-fetch for rotated keys actually happens."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks = {loop: (lock := asyncio.Lock())}  # one loop at a time; drop locks of closed loops
        return lock

    async def _refresh(self) -> None:
        asked_at = datetime.now()
        async with self._lock():
            if self.last_updated >= asked_at:  # another request refreshed while this one waited
                return
            keys = await asyncio.to_thread(self._fetch_keys)
            self.keys = keys
            self.last_updated = datetime.now()

    def _fetch_keys(self) -> list[dict]:
        response = requests.get(self.url, timeout=KEY_FETCH_TIMEOUT_SECONDS)
        response.raise_for_status()
        keys_url = response.json()["jwks_uri"]
        response_keys = requests.get(keys_url, timeout=KEY_FETCH_TIMEOUT_SECONDS)
        response_keys.raise_for_status()
        return response_keys.json()["keys"]

    def _find(self, key_id: str):
        if not any(key.get("kid") == key_id for key in self.keys or ()):
            return None
        return super()._find(key_id)

    async def prefetch(self) -> None:
        await self._refresh()


def _open_id_metadata(metadata_url: str) -> NonBlockingOpenIdMetadata:
    metadata = JwtTokenExtractor.metadataCache.get(metadata_url)
    if not isinstance(metadata, NonBlockingOpenIdMetadata):
        metadata = NonBlockingOpenIdMetadata(metadata_url)
        JwtTokenExtractor.metadataCache[metadata_url] = metadata
    return metadata


def install_non_blocking_key_fetch() -> None:
    """Every JwtTokenExtractor (channel, emulator, skill validation) gets its keys through NonBlockingOpenIdMetadata."""
    JwtTokenExtractor.get_open_id_metadata = staticmethod(_open_id_metadata)


async def authenticate(
    auth: BotFrameworkAuthentication, activity: Activity, auth_header: str
) -> AuthenticateRequestResult:
    """botbuilder answers a bad token with PermissionError, jwt errors, IndexError, bare Exception or requests
    errors (keys unreachable); all of them mean the same to the caller: 401."""
    try:
        return await auth.authenticate_request(activity, auth_header)
    except asyncio.CancelledError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure here is an authentication failure
        if isinstance(err, requests.RequestException):
            reason = f"signing keys unavailable ({type(err).__name__})"
        elif not auth_header:
            reason = "no Authorization header"
        else:
            reason = f"token rejected ({type(err).__name__}: {str(err)[:160]})"
        raise Unauthorized(reason) from None
