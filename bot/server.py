"""HTTP entry point of the bot: the aiohttp app that authenticates Bot Connector requests and runs a turn handler."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from botbuilder.core import Bot, InvokeResponse, TurnContext, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth import AuthenticationConstants, ChannelValidation, JwtTokenExtractor

from bot import invoke
from bot.auth import Unauthorized, authenticate, install_non_blocking_key_fetch
from bot.performance import CachingBotFrameworkAuthentication, make_retry_codes_constant_time
from bot.proactive import ProactiveNotifier
from config.settings import Settings
from ops import telemetry
from ops.logging import log_context, new_correlation_id

log = logging.getLogger(__name__)

SETTINGS_KEY = web.AppKey("settings", Settings)
BOT_KEY = web.AppKey("bot", Bot)
ADAPTER_KEY = web.AppKey("adapter", CloudAdapter)
AUTH_KEY = web.AppKey("bot_authentication", CachingBotFrameworkAuthentication)
NOTIFIER_KEY = web.AppKey("notifier", ProactiveNotifier)

_TURN_FAILED_TEXT = "Lo siento, ocurrió un error al procesar tu mensaje. Inténtalo de nuevo en unos minutos."


def create_app(settings: Settings, bot: Bot, *, extra_routes: Iterable[web.AbstractRouteDef] | None = None
               ) -> web.Application:
    """The bot's web app: `POST /api/messages`, `GET /healthz`, plus `extra_routes`.

    The adapter, the notifier for proactive sends and the connector clients live from startup to cleanup
    (`app[ADAPTER_KEY]`, `app[NOTIFIER_KEY]`)."""
    if not settings.app_id and not settings.is_local:
        raise ValueError("Without MicrosoftAppId the bot only starts in local mode (CLAQUETA_LOCAL_MODE=true).")
    install_platform_fixes()
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_json_errors])
    app[SETTINGS_KEY] = settings
    app[BOT_KEY] = bot
    app.cleanup_ctx.append(_bot_framework)
    app.router.add_post("/api/messages", _messages)
    app.router.add_get("/healthz", _healthz)
    if extra_routes:
        app.router.add_routes(extra_routes)
    return app


def install_platform_fixes() -> None:
    """Process-wide, idempotent patches of botbuilder 4.17.1 (see bot.performance and bot.auth)."""
    make_retry_codes_constant_time()
    install_non_blocking_key_fetch()


def authentication_enabled(settings: Settings) -> bool:
    return bool(settings.app_id)


def _bot_configuration(settings: Settings) -> SimpleNamespace:
    # botbuilder's SingleTenant factory refuses an empty app id, which is exactly local mode.
    return SimpleNamespace(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password.get_secret_value(),
        APP_TYPE=settings.app_type if settings.app_id else "MultiTenant",
        APP_TENANTID=settings.app_tenant_id,
    )


async def _bot_framework(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    auth = CachingBotFrameworkAuthentication(ConfigurationBotFrameworkAuthentication(_bot_configuration(settings)))
    adapter = CloudAdapter(auth)
    adapter.on_turn_error = _on_turn_error
    app[AUTH_KEY] = auth
    app[ADAPTER_KEY] = adapter
    app[NOTIFIER_KEY] = ProactiveNotifier(adapter, settings.app_id)
    prefetch = None
    if authentication_enabled(settings):
        log.info("Bot Framework authentication on for app id %s (%s)", settings.app_id, settings.app_type)
        prefetch = asyncio.create_task(_prefetch_signing_keys())
    else:
        log.warning("LOCAL MODE: no MicrosoftAppId, requests to /api/messages are accepted WITHOUT "
                    "authentication. Never expose this instance outside this machine.")
    try:
        yield
    finally:
        if prefetch is not None:
            prefetch.cancel()
        await auth.close()


async def _prefetch_signing_keys() -> None:
    # The first Teams request should not wait for the key download (botbuilder then caches them a day).
    url = ChannelValidation.open_id_metadata_endpoint or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    try:
        await JwtTokenExtractor.get_open_id_metadata(url).prefetch()
    except Exception as err:  # noqa: BLE001 - retried on the first request anyway
        log.warning("could not prefetch Bot Framework signing keys: %s", type(err).__name__)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def _json_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


async def _messages(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS_KEY]
    if request.content_type != "application/json":
        return _error(415, "unsupported_media_type", "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return _error(413, "payload_too_large", f"body larger than {settings.max_body_bytes} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "payload_too_large", f"body larger than {settings.max_body_bytes} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "malformed_json", "body is not valid JSON")
    activity = _activity_from(body)
    if activity is None:
        return _error(400, "not_an_activity", "body is not a Bot Framework activity")
    fields = _turn_fields(activity, request.headers)
    # Every line logged during the turn carries these; the span joins them to the trace in Azure Monitor.
    with log_context(**fields), telemetry.span("bot.turn", **{f"claqueta.{k}": v for k, v in fields.items()}):
        return await _turn(request, activity)


async def _turn(request: web.Request, activity: Activity) -> web.Response:
    app = request.app
    settings = app[SETTINGS_KEY]
    # In local mode a stray token must not send the bot to fetch signing keys from the internet.
    auth_header = request.headers.get("Authorization", "") if authentication_enabled(settings) else ""
    try:
        auth_result = await authenticate(app[AUTH_KEY], activity, auth_header)
    except Unauthorized as err:
        log.warning("rejected %s activity from %s: %s", activity.type, request.remote, err.reason)
        return _error(401, "unauthorized", "request not authenticated")

    try:
        invoke_response = await app[ADAPTER_KEY].process_activity(auth_result, activity, app[BOT_KEY].on_turn)
    except Exception:
        log.exception("turn for %s activity %s failed outside the handler", activity.type, activity.id)
        return _error(500, "turn_failed", "the bot could not process the activity")
    return _http_response(invoke_response)


def _activity_from(body: Any) -> Activity | None:
    # Checked on the raw JSON: msrest would quietly turn {"type": 42} into "42".
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not body["type"]:
        return None
    conversation = body.get("conversation")
    if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str):
        return None
    try:
        activity = Activity().deserialize(body)
    except Exception:  # noqa: BLE001 - msrest raises several types for shapes it cannot read
        return None
    if not isinstance(activity.type, str) or not activity.type:
        return None
    if not isinstance(activity.service_url, str) or not activity.service_url.startswith(("http://", "https://")):
        return None
    if activity.conversation is None or not activity.conversation.id:
        return None
    return activity


def _http_response(invoke_response: InvokeResponse | None) -> web.Response:
    if invoke_response is None:
        return web.Response(status=200)
    status = int(invoke_response.status or 200)
    body = invoke_response.body
    if body is None:
        return web.Response(status=status)
    if hasattr(body, "serialize"):
        # Exactly one serialisation: CloudAdapter.process applies a second one (botbuilder 4.17.1 bug).
        body = serializer_helper(body)
    return web.json_response(body, status=status)


async def _on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    activity = turn_context.activity
    log.error("unhandled error in a %s turn (activity %s)", activity.type, activity.id,
              exc_info=(type(error), error, error.__traceback__))
    try:
        if activity.type == ActivityTypes.invoke:
            await turn_context.send_activity(Activity(
                type=ActivityTypes.invoke_response,
                value=InvokeResponse(status=200, body=invoke.error_response(
                    500, "error_interno", "No se pudo completar la acción. Inténtalo de nuevo en unos minutos.")),
            ))
        elif activity.type == ActivityTypes.message:
            await turn_context.send_activity(_TURN_FAILED_TEXT)
    except Exception as err:  # noqa: BLE001 - the connector may be what failed
        log.warning("could not tell the user about the failed turn: %s", type(err).__name__)


def _turn_fields(activity: Activity, headers) -> dict[str, str]:
    """Correlation id (the activity's id, else Teams' MS-CV header, else a new one), type, verb, request and step."""
    value = activity.value if isinstance(activity.value, dict) else {}
    action = value.get("action") if isinstance(value.get("action"), dict) else {}
    verb = action.get("verb") or value.get("verb") or (value.get("action") if isinstance(value.get("action"), str)
                                                         else None)
    data = action.get("data") if isinstance(action.get("data"), dict) else value
    return {
        "correlation_id": str(activity.id or headers.get("MS-CV") or new_correlation_id()),
        "activity_type": activity.type,
        "verb": verb if isinstance(verb, str) else "",
        "request_number": data.get("number") if isinstance(data.get("number"), str) else "",
        "step_id": data.get("step") if isinstance(data.get("step"), str) else "",
    }
