"""Outbound sends outside a turn: one retry wrapper for every send, and the notifier that uses stored conversation references."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import requests
from botbuilder.core import BotAdapter, CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity, ChannelAccount, ConversationParameters, ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Teams throttling (429), a stale conversation state (412) and gateway failures (502/504) pass with time.
RETRYABLE_STATUSES = frozenset({429, 412, 502, 504})
# A Retry-After beyond this is not waited out inside a send: the effect queue retries later instead.
MAX_RETRY_AFTER_SECONDS = 60.0


class DeliveryFailed(Exception):
    """An outbound send did not reach the Bot Connector. `status` is the last HTTP status (None: no answer)."""

    def __init__(self, status: int | None, attempts: int, reason: str) -> None:
        super().__init__(f"delivery failed after {attempts} attempt(s): {reason}")
        self.status = status
        self.attempts = attempts
        self.reason = reason


class _Failure:
    __slots__ = ("status", "retry_after", "reason")

    def __init__(self, status: int | None, retry_after: float | None, reason: str) -> None:
        self.status = status
        self.retry_after = retry_after
        self.reason = reason

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _classify(err: BaseException) -> _Failure | None:
    """What went wrong with a send, or None when `err` is not a delivery problem (a bug: re-raised as is)."""
    if isinstance(err, HttpOperationError):
        response = err.response
        status = getattr(response, "status_code", None) or getattr(response, "status", None)
        return _Failure(status, _retry_after(getattr(response, "headers", None)), f"HTTP {status}")
    if isinstance(err, aiohttp.ClientResponseError):
        return _Failure(err.status, _retry_after(err.headers), f"HTTP {err.status}")
    if isinstance(err, (ClientRequestError, aiohttp.ClientError, requests.RequestException,
                        asyncio.TimeoutError, ConnectionError)):
        return _Failure(None, None, type(err).__name__)
    return None


async def send_with_retry(
    coro_factory: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Run `coro_factory()` until it succeeds, retrying HTTP 429/412/502/504 and connection failures with
    exponential backoff and full jitter (at least Retry-After when the service sends one). Raises
    DeliveryFailed after `attempts`, or at once for any other HTTP status."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return await coro_factory()
        except Exception as err:
            failure = _classify(err)
            if failure is None:
                raise
            if not failure.retryable or attempt == attempts:
                raise DeliveryFailed(failure.status, attempt, failure.reason) from err
            delay = jitter() * min(max_delay, base_delay * 2 ** (attempt - 1))
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, MAX_RETRY_AFTER_SECONDS))
            log.info("outbound send failed (%s), attempt %d/%d, retrying in %.2fs",
                     failure.reason, attempt, attempts, delay)
            await sleep(delay)
    raise AssertionError("unreachable")


class ProactiveNotifier:
    """Sends to a conversation the bot has seen before, from a stored reference (a dict made by
    `reference_of(activity)`), every send through `send_with_retry`."""

    def __init__(self, adapter: BotAdapter, bot_app_id: str, *, attempts: int = 5, base_delay: float = 0.5,
                 max_delay: float = 8.0, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self._adapter = adapter
        self._bot_app_id = bot_app_id
        self._retry = dict(attempts=attempts, base_delay=base_delay, max_delay=max_delay, sleep=sleep)

    @staticmethod
    def reference_of(activity: Activity) -> dict[str, Any]:
        """The storable reference of the conversation `activity` came from (keep one per person)."""
        return TurnContext.get_conversation_reference(activity).serialize()

    async def send(self, reference: dict[str, Any], activity: Activity | str) -> str | None:
        """Post `activity` (or a text) to the conversation; returns the new activity id (to update it later)."""
        message = MessageFactory.text(activity) if isinstance(activity, str) else activity

        async def post(turn_context: TurnContext) -> str | None:
            response = await turn_context.send_activity(message)
            return response.id if response else None

        return await send_with_retry(lambda: self._continue(reference, post), **self._retry)

    async def send_card(self, reference: dict[str, Any], card: dict[str, Any]) -> str | None:
        return await self.send(reference, MessageFactory.attachment(CardFactory.adaptive_card(card)))

    async def update(self, reference: dict[str, Any], activity_id: str, activity: Activity | str) -> None:
        """Replace the message `activity_id` (e.g. a card whose buttons no longer apply) in place."""
        message = MessageFactory.text(activity) if isinstance(activity, str) else activity
        message.id = activity_id

        async def put(turn_context: TurnContext) -> None:
            await turn_context.update_activity(message)

        await send_with_retry(lambda: self._continue(reference, put), **self._retry)

    async def update_card(self, reference: dict[str, Any], activity_id: str, card: dict[str, Any]) -> None:
        await self.update(reference, activity_id, MessageFactory.attachment(CardFactory.adaptive_card(card)))

    async def create_personal_conversation(self, *, service_url: str, tenant_id: str, user_id: str,
                                           bot_id: str | None = None) -> dict[str, Any]:
        """Open the 1:1 chat with a person who never wrote to the bot (the app must be installed for them);
        returns its reference for `send`."""
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=bot_id or f"28:{self._bot_app_id}"),
            members=[ChannelAccount(id=user_id)],
            tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )
        created: dict[str, Any] = {}

        async def remember(turn_context: TurnContext) -> None:
            created["reference"] = self.reference_of(turn_context.activity)

        async def create() -> None:
            await self._adapter.create_conversation(
                self._bot_app_id, remember, parameters, channel_id="msteams", service_url=service_url
            )

        await send_with_retry(create, **self._retry)
        return created["reference"]

    async def _continue(self, reference: dict[str, Any], action: Callable[[TurnContext], Awaitable[T]]) -> T:
        outcome: dict[str, Any] = {}

        async def callback(turn_context: TurnContext) -> None:
            # Caught here, not by the adapter's on_turn_error (which would message the user about it):
            # the retry wrapper has to see the connector's status.
            try:
                outcome["result"] = await action(turn_context)
            except Exception as err:  # noqa: BLE001 - re-raised below, outside the pipeline
                outcome["error"] = err

        await self._adapter.continue_conversation(
            ConversationReference().deserialize(reference), callback, self._bot_app_id
        )
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")
