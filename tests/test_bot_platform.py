"""The Bot Framework platform layer over real HTTP: turns, invokes, body limits, authentication, proactive sends."""

from __future__ import annotations

import json
import logging
import time
import uuid

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.core import BotAdapter, TurnContext
from botbuilder.schema import Activity
from botframework.connector.auth import ChannelValidation, JwtTokenExtractor
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from msrest.universal_http.requests import ClientRetryPolicy
from pydantic import SecretStr

from bot import invoke
from bot.activity_handler import ClaquetaActivityHandler
from bot.proactive import DeliveryFailed, ProactiveNotifier, send_with_retry
from bot.server import ADAPTER_KEY, AUTH_KEY, create_app
from config.settings import Settings
from tests import activities
from tests.fake_connector import FakeConnector

APP_ID = activities.BOT_APP_ID


def done_card(verb: str) -> dict:
    return {"type": "AdaptiveCard", "version": "1.5",
            "body": [{"type": "TextBlock", "text": f"Hecho: {verb}", "wrap": True}]}


class EchoHandler(ClaquetaActivityHandler):
    """Replies "eco: …" and answers every card click with a card, except a few verbs used by the tests."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict]] = []
        self.connector_clients: list[object] = []

    async def on_text_message(self, turn_context: TurnContext, text: str) -> None:
        self.connector_clients.append(turn_context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY])
        if text == "falla":
            raise RuntimeError("handler bug")
        await turn_context.send_activity(f"eco: {text}")

    async def on_card_action(self, turn_context: TurnContext, verb: str, data: dict) -> dict:
        self.actions.append((verb, data))
        if verb == "explotar":
            raise RuntimeError("handler bug")
        if verb == "consultar":
            return invoke.message_response("La solicitud está en revisión.")
        if verb == "aprobar_ajeno":
            return invoke.error_response(403, "sin_permiso", "Solo la jefa del área puede aprobar.")
        return invoke.card_response(done_card(verb))


def local_settings(**overrides) -> Settings:
    return Settings(_env_file=None, local_mode=True, app_id="", max_body_bytes=8 * 1024, **overrides)


@pytest.fixture
async def connector():
    async with FakeConnector() as fake:
        yield fake


@pytest.fixture
def handler() -> EchoHandler:
    return EchoHandler()


@pytest.fixture
async def client(handler):
    async with TestClient(TestServer(create_app(local_settings(), handler))) as test_client:
        yield test_client


async def post(client: TestClient, activity: dict, **headers: str):
    return await client.post("/api/messages", data=json.dumps(activity),
                             headers={"Content-Type": "application/json; charset=utf-8", **headers})


# ── turns ──

async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_message_is_answered_through_the_connector(client, connector):
    activity = activities.message("hola", service_url=connector.service_url)
    response = await post(client, activity)
    assert response.status == 200
    [reply] = await connector.wait_for_activities(1)
    assert reply.body["text"] == "eco: hola"
    assert reply.conversation_id == activities.CONVERSATION_ID
    assert reply.activity_id == activity["id"]  # a reply to the person's message
    assert reply.body["recipient"]["id"] == activities.ANA["id"]


async def test_bot_mention_is_removed_from_the_text(client, connector):
    await post(client, activities.message("estado", mention_bot=True, service_url=connector.service_url))
    [reply] = await connector.wait_for_activities(1)
    assert reply.body["text"] == "eco: estado"


async def test_failing_handler_tells_the_person_in_spanish(client, connector):
    response = await post(client, activities.message("falla", service_url=connector.service_url))
    assert response.status == 200
    [reply] = await connector.wait_for_activities(1)
    assert reply.body["text"].startswith("Lo siento, ocurrió un error")


async def test_welcome_activities_do_not_fail(client, connector):
    for activity in (activities.members_added(service_url=connector.service_url),
                     activities.installation_update(service_url=connector.service_url)):
        assert (await post(client, activity)).status == 200


# ── card actions ──

async def test_execute_answers_http_200_with_exactly_the_invoke_value(client, connector, handler):
    activity = activities.card_action("aprobar", {"solicitud": "SOL-7", "comentario": "ok"},
                                      service_url=connector.service_url)
    response = await post(client, activity)
    assert response.status == 200
    assert await response.json() == {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive",
                                     "value": done_card("aprobar")}
    assert handler.actions == [("aprobar", {"solicitud": "SOL-7", "comentario": "ok"})]
    assert connector.calls == []  # the card comes back in the HTTP answer, nothing is posted


@pytest.mark.parametrize("verb, expected", [
    ("consultar", {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                   "value": "La solicitud está en revisión."}),
    ("aprobar_ajeno", {"statusCode": 403, "type": "application/vnd.microsoft.error",
                       "value": {"code": "sin_permiso", "message": "Solo la jefa del área puede aprobar."}}),
])
async def test_execute_message_and_error_forms(client, connector, verb, expected):
    response = await post(client, activities.card_action(verb, service_url=connector.service_url))
    assert response.status == 200
    assert await response.json() == expected


async def test_execute_whose_handler_fails_still_answers_the_card(client, connector):
    response = await post(client, activities.card_action("explotar", service_url=connector.service_url))
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 500 and body["type"] == invoke.ERROR_TYPE
    assert "No se pudo completar" in body["value"]["message"]


async def test_execute_without_verb_is_refused_in_the_card(client, connector, handler):
    activity = activities.invoke("adaptiveCard/action", {"action": {"type": "Action.Execute"}},
                                 service_url=connector.service_url)
    response = await post(client, activity)
    assert response.status == 200
    assert (await response.json())["statusCode"] == 400
    assert handler.actions == []


async def test_unknown_invoke_is_answered_200(client, connector):
    response = await post(client, activities.invoke("task/fetch", {"data": {}}, service_url=connector.service_url))
    assert response.status == 200


async def test_submit_fallback_runs_the_same_action_and_posts_the_card(client, connector, handler):
    data = {"verb": "aprobar", "solicitud": "SOL-7", "comentario": "conforme"}
    response = await post(client, activities.submit(data, service_url=connector.service_url))
    assert response.status == 200
    assert handler.actions == [("aprobar", data)]
    [reply] = await connector.wait_for_activities(1)
    [attachment] = reply.body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"] == done_card("aprobar")


async def test_submit_with_action_key_and_text_answer(client, connector, handler):
    await post(client, activities.submit({"action": "consultar"}, service_url=connector.service_url))
    [reply] = await connector.wait_for_activities(1)
    assert reply.body["text"] == "La solicitud está en revisión."
    assert handler.actions == [("consultar", {"action": "consultar"})]


# ── request bodies ──

async def test_body_over_the_limit_is_413(client, connector):
    activity = activities.message("x" * 10_000, service_url=connector.service_url)
    response = await post(client, activity)
    assert response.status == 413
    assert "error" in await response.json()


async def test_chunked_body_over_the_limit_is_413(client, connector):
    payload = json.dumps(activities.message("x" * 10_000, service_url=connector.service_url)).encode()

    async def chunks():
        for start in range(0, len(payload), 1024):
            yield payload[start:start + 1024]

    response = await client.post("/api/messages", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert connector.calls == []


@pytest.mark.parametrize("raw", [
    b"{not json",
    b"\xff\xfe\x00",
    b"[1, 2, 3]",
    b'"message"',
    b'{"hello": "world"}',
    b'{"type": "message", "text": "sin serviceUrl", "conversation": {"id": "a:1"}}',
    b'{"type": "message", "serviceUrl": "file:///etc/passwd", "conversation": {"id": "a:1"}}',
    b'{"type": 42, "serviceUrl": "http://127.0.0.1:9/", "conversation": {"id": "a:1"}}',
    b'{"type": "message", "serviceUrl": "http://127.0.0.1:9/", "conversation": "a:1"}',
])
async def test_bodies_that_are_not_activities_are_400(client, raw):
    response = await client.post("/api/messages", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert "error" in await response.json()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_wrong_content_type_is_415(client, connector, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    data = json.dumps(activities.message("hola", service_url=connector.service_url)).encode()
    response = await client.post("/api/messages", data=data, headers=headers, skip_auto_headers={"Content-Type"})
    assert response.status == 415
    assert connector.calls == []


def test_without_app_id_it_refuses_to_start_outside_local_mode():
    with pytest.raises(ValueError):
        create_app(Settings(_env_file=None, local_mode=False, app_id=""), EchoHandler())


# ── authentication ──

class SigningKeys:
    """A loopback OpenID metadata endpoint serving the public half of a test RSA key, as login.botframework.com does."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "endorsements": ["msteams"]}]}

    def app(self) -> web.Application:
        app = web.Application()

        async def metadata(request):
            return web.json_response({"issuer": "https://api.botframework.com",
                                      "jwks_uri": f"{request.scheme}://{request.host}/keys"})

        async def keys(request):
            return web.json_response(self.jwks)

        app.router.add_get("/v1/.well-known/openidconfiguration", metadata)
        app.router.add_get("/keys", keys)
        return app


def pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def channel_token(private_key, kid: str, *, service_url: str, audience: str = APP_ID, expires_in: int = 3600) -> str:
    now = int(time.time())
    claims = {"iss": "https://api.botframework.com", "aud": audience, "serviceurl": service_url,
              "nbf": now - 60, "iat": now - 60, "exp": now + expires_in}
    return jwt.encode(claims, pem(private_key), algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def fresh_key_cache(monkeypatch):
    monkeypatch.setattr(JwtTokenExtractor, "metadataCache", {})


@pytest.fixture
async def signing_keys(monkeypatch, fresh_key_cache):
    keys = SigningKeys()
    async with TestServer(keys.app()) as server:
        monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint",
                            str(server.make_url("/v1/.well-known/openidconfiguration")))
        yield keys


def authenticated_settings() -> Settings:
    return Settings(_env_file=None, local_mode=False, app_id=APP_ID, app_type="MultiTenant",
                    app_password=SecretStr("not-a-real-secret"))


@pytest.fixture
async def secured_client(signing_keys, handler):
    async with TestClient(TestServer(create_app(authenticated_settings(), handler))) as test_client:
        yield test_client


async def test_token_signed_by_the_channel_is_accepted(secured_client, signing_keys, connector, handler):
    activity = activities.card_action("aprobar", service_url=connector.service_url)
    token = channel_token(signing_keys.key, signing_keys.kid, service_url=connector.service_url)
    response = await post(secured_client, activity, Authorization=f"Bearer {token}")
    assert response.status == 200
    assert (await response.json())["value"] == done_card("aprobar")
    assert handler.actions == [("aprobar", {})]


def _bad_headers(keys: SigningKeys, service_url: str) -> dict[str, dict[str, str]]:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "no header": {},
        "not a jwt": {"Authorization": "Bearer not.a.jwt"},
        "garbage": {"Authorization": "Bearer %%%"},
        "no scheme": {"Authorization": channel_token(keys.key, keys.kid, service_url=service_url)},
        "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "expired": {"Authorization": "Bearer " + channel_token(keys.key, keys.kid, service_url=service_url,
                                                               expires_in=-3600)},
        "forged signature": {"Authorization": "Bearer " + channel_token(other_key, keys.kid, service_url=service_url)},
        "unknown key id": {"Authorization": "Bearer " + channel_token(other_key, "rotated-away",
                                                                      service_url=service_url)},
        "wrong audience": {"Authorization": "Bearer " + channel_token(keys.key, keys.kid, service_url=service_url,
                                                                      audience=str(uuid.uuid4()))},
        "other service url": {"Authorization": "Bearer " + channel_token(keys.key, keys.kid,
                                                                         service_url="https://evil.example/")},
    }


async def test_every_bad_token_is_401_and_reaches_no_handler(secured_client, signing_keys, connector, handler,
                                                              caplog):
    bad_headers = _bad_headers(signing_keys, connector.service_url)
    with caplog.at_level(logging.DEBUG):
        for name, headers in bad_headers.items():
            activity = activities.card_action("aprobar", service_url=connector.service_url)
            response = await post(secured_client, activity, **headers)
            assert response.status == 401, name
            assert (await response.json())["error"]["code"] == "unauthorized", name
    assert handler.actions == []
    # The log says why, never with the token or the app password.
    assert "rejected invoke activity" in caplog.text
    for headers in bad_headers.values():
        for token in headers.get("Authorization", "").split()[-1:]:
            assert token[-20:] not in caplog.text
    assert "not-a-real-secret" not in caplog.text


async def test_unreachable_signing_keys_is_401(monkeypatch, fresh_key_cache, handler, connector, unused_tcp_port):
    monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint",
                        f"http://127.0.0.1:{unused_tcp_port}/v1/.well-known/openidconfiguration")
    keys = SigningKeys()
    async with TestClient(TestServer(create_app(authenticated_settings(), handler))) as secured:
        token = channel_token(keys.key, keys.kid, service_url=connector.service_url)
        response = await post(secured, activities.card_action("aprobar", service_url=connector.service_url),
                              Authorization=f"Bearer {token}")
    assert response.status == 401
    assert handler.actions == []


async def test_local_mode_ignores_a_stray_token(client, connector, handler):
    response = await post(client, activities.card_action("aprobar", service_url=connector.service_url),
                          Authorization="Bearer not.a.jwt")
    assert response.status == 200


# ── proactive sends ──

class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def _reference(client: TestClient, connector: FakeConnector) -> dict:
    activity = activities.message("hola", service_url=connector.service_url)
    await post(client, activity)
    await connector.wait_for_activities(1)
    return ProactiveNotifier.reference_of(Activity().deserialize(activity))


def notifier(client: TestClient, sleep: RecordingSleep, attempts: int = 5) -> ProactiveNotifier:
    return ProactiveNotifier(client.app[ADAPTER_KEY], "", attempts=attempts, base_delay=0.01, sleep=sleep)


async def test_proactive_send_waits_out_429_and_delivers_once(client, connector):
    reference = await _reference(client, connector)
    sleep = RecordingSleep()
    connector.fail_next(2, status=429, retry_after="3")
    activity_id = await notifier(client, sleep).send(reference, "Tienes una revisión pendiente.")
    delivered = connector.delivered
    assert [c.body.get("text") for c in delivered] == ["eco: hola", "Tienes una revisión pendiente."]
    assert activity_id and activity_id.startswith("act-")
    assert [c.status for c in connector.calls[1:]] == [429, 429, 201]
    assert len(sleep.delays) == 2 and all(delay >= 3 for delay in sleep.delays)  # Retry-After honoured


async def test_proactive_send_gives_up_with_delivery_failed(client, connector):
    reference = await _reference(client, connector)
    connector.fail_next(10, status=429, retry_after=None)
    with pytest.raises(DeliveryFailed) as failure:
        await notifier(client, RecordingSleep(), attempts=3).send(reference, "Recordatorio")
    assert failure.value.status == 429 and failure.value.attempts == 3
    assert [c.status for c in connector.calls[1:]] == [429, 429, 429]


async def test_proactive_send_does_not_retry_a_refusal(client, connector):
    reference = await _reference(client, connector)
    connector.fail_next(1, status=403)
    with pytest.raises(DeliveryFailed) as failure:
        await notifier(client, RecordingSleep()).send(reference, "Recordatorio")
    assert failure.value.status == 403 and failure.value.attempts == 1
    assert len(connector.calls) == 2


async def test_card_is_replaced_in_place(client, connector):
    reference = await _reference(client, connector)
    sleep = RecordingSleep()
    sender = notifier(client, sleep)
    activity_id = await sender.send_card(reference, done_card("pendiente"))
    connector.fail_next(1, status=502)
    await sender.update_card(reference, activity_id, done_card("aprobado"))
    [update] = connector.updates
    assert update.activity_id == activity_id
    assert update.body["attachments"][0]["content"] == done_card("aprobado")
    # One PUT retry, and it was the wrapper's (urllib3 no longer retries 502 behind its back).
    assert [c.status for c in connector.calls if c.method == "PUT"] == [502, 200]
    assert len(sleep.delays) == 1


async def test_personal_conversation_is_created_then_used(client, connector):
    sender = notifier(client, RecordingSleep())
    reference = await sender.create_personal_conversation(
        service_url=connector.service_url, tenant_id=activities.TENANT_ID, user_id=activities.ANA["id"],
        bot_id=activities.BOT["id"])
    [created] = connector.created_conversations
    assert created.body["members"] == [{"id": activities.ANA["id"]}]
    assert created.body["channelData"] == {"tenant": {"id": activities.TENANT_ID}}
    await sender.send(reference, "Hola Ana")
    [sent] = connector.delivered
    assert sent.conversation_id == reference["conversation"]["id"]
    assert sent.body["text"] == "Hola Ana"


async def test_send_with_retry_uses_backoff_with_jitter_and_a_cap():
    from msrest.exceptions import HttpOperationError

    class Response:
        status_code = 502
        headers: dict = {}
        reason = "Bad Gateway"
        text = ""

    calls = 0

    async def always_502():
        nonlocal calls
        calls += 1
        error = HttpOperationError.__new__(HttpOperationError)
        Exception.__init__(error, "bad gateway")
        error.response = Response()
        raise error

    sleep = RecordingSleep()
    with pytest.raises(DeliveryFailed) as failure:
        await send_with_retry(always_502, attempts=6, base_delay=1, max_delay=4, sleep=sleep, jitter=lambda: 1.0)
    assert calls == 6 and failure.value.status == 502
    assert sleep.delays == [1, 2, 4, 4, 4]


async def test_send_with_retry_lets_bugs_through():
    async def bug():
        raise KeyError("not a delivery problem")

    with pytest.raises(KeyError):
        await send_with_retry(bug, sleep=RecordingSleep())


# ── per-turn cost ──

async def test_turns_and_proactive_sends_share_one_connector_client(client, connector, handler):
    for text in ("uno", "dos"):
        await post(client, activities.message(text, service_url=connector.service_url))
    await connector.wait_for_activities(2)
    first, second = handler.connector_clients
    assert first is second
    reference = ProactiveNotifier.reference_of(
        Activity().deserialize(activities.message("x", service_url=connector.service_url)))
    await notifier(client, RecordingSleep()).send(reference, "aviso")
    assert len(client.app[AUTH_KEY].connector_clients) == 1
    # ...and its kept-alive connection: every request came over the same TCP connection.
    assert len({c.peer_port for c in connector.calls}) == 1


def test_retry_policy_keeps_its_retryable_statuses():
    original_safe_codes = [i for i in range(500) if i != 408] + [501, 505]
    create_app(local_settings(), EchoHandler())  # installs the fix
    assert isinstance(ClientRetryPolicy.safe_codes, frozenset)
    forcelist = set(ClientRetryPolicy().policy.status_forcelist)
    assert forcelist == {i for i in range(999) if i not in original_safe_codes}
    # msrest's own semantics: 408 and 5xx but 501/505 (429 and 412 are send_with_retry's business).
    assert {408, 500, 502, 503, 504} <= forcelist
    assert not forcelist & {200, 201, 400, 403, 404, 412, 429, 501, 505}


async def test_local_mode_says_so_at_startup(caplog, signing_keys):
    with caplog.at_level(logging.WARNING, logger="bot.server"):
        async with TestClient(TestServer(create_app(local_settings(), EchoHandler()))):
            pass
    assert "LOCAL MODE" in caplog.text and "WITHOUT authentication" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.server"):
        async with TestClient(TestServer(create_app(authenticated_settings(), EchoHandler()))):
            pass
    assert "LOCAL MODE" not in caplog.text and "authentication on" in caplog.text
