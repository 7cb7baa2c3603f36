"""Outlook approvals: the director's email carries the approval card, and a click in it moves the request as in Teams."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import build, create_web_app
from cards.outlook import OUTLOOK_ONLY_PROPERTIES
from cards.verbs import CardData, Inputs, Verb
from config.settings import Settings
from procedure.definition import PROCEDURE
from procedure.model import StepKind
from tests.card_json import walk
from tests import activities
from tests.driving import NOW
from tests.fake_connector import FakeConnector
from tests.test_bot_flow import IDS, ROLE_OF_STEP, inputs_for, user

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "schemas" / "adaptive-card.json").read_text(encoding="utf-8"))
ORIGINATOR = "6f1c2b9e-4d7a-4c1e-9b3f-2a8d5e7c0f14"  # the provider id the Actionable Email Developer Dashboard gives
DIRECTOR = "director_dsi"  # Carmen Torres Villanueva, director of DSI, the requesting area
DIRECTOR_EMAIL = "ctorres@proinversion.example"
CARD = "application/vnd.microsoft.card.adaptive"
SCRIPT_TAG = re.compile(r'<script type="application/adaptivecard\+json">(.*?)</script>', re.DOTALL)
_ids = itertools.count(1_713_000_000_000)


def outlook_action(verb: str, data: dict[str, Any], *, who: str, trigger: str = "manual") -> dict[str, Any]:
    """An Action.Execute from a card in an email, as the bot's Outlook channel delivers it.

    Microsoft documents the invoke's `type`, `name` and `value` (`action` with `type`, `verb`, `data`; `trigger`)
    and the user's Entra object id in `from.aadObjectId`; channelId "outlook" is the Agents SDK's constant for the
    channel. There is no Teams conversationType, tenant channelData or personal chat: the conversation is the email.
    """
    now = datetime.now(timezone.utc)
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": f"{next(_ids)}",
        "channelId": "outlook",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        # Not published for this channel; nothing is ever sent there (the answer is the HTTP body), and a
        # loopback port nobody listens on makes any attempt fail loudly instead of leaving the machine.
        "serviceUrl": "http://127.0.0.1:9/outlook/",
        "from": {"id": IDS[who], "aadObjectId": IDS[who], "name": who},
        "conversation": {"id": f"AAMkAGI2TG93AAA={next(_ids)}"},  # the email, not a chat
        "recipient": dict(activities.BOT),
        "locale": "es-PE",
        "value": {"action": {"type": "Action.Execute", "id": f"outlook-{verb}", "verb": verb, "data": dict(data)},
                  "trigger": trigger},
    }


class Office:
    def __init__(self, client: TestClient, connector: FakeConnector, components):
        self.client, self.connector, self.components = client, connector, components
        self.store = components.store

    async def post(self, activity: dict) -> dict:
        response = await self.client.post("/api/messages", json=activity)
        assert response.status == 200, await response.text()
        return await response.json()

    async def say(self, who: str, text: str) -> None:
        await self.post_message(activities.message(text, service_url=self.connector.service_url, user=user(who),
                                                   conversation_id=f"a:{who}"))

    async def post_message(self, activity: dict) -> None:
        response = await self.client.post("/api/messages", json=activity)
        assert response.status == 200

    async def click(self, who: str, verb: str, data: dict) -> dict:
        """A click in Teams (the personal chat with the bot)."""
        activity = activities.card_action(verb, data, service_url=self.connector.service_url, user=user(who))
        activity["conversation"]["id"] = f"a:{who}"
        return await self.post(activity)

    async def outlook(self, who: str, verb: str, data: dict, trigger: str = "manual") -> dict:
        return await self.post(outlook_action(verb, data, who=who, trigger=trigger))

    async def drain(self) -> None:
        while await self.components.dispatcher.run_once():
            pass

    async def walk_to(self, number: str, step_id: str) -> None:
        """Complete (and approve) every step until the request waits at `step_id`."""
        for _ in range(40):
            request = await self.store.get(number)
            if request.step_id == step_id:
                await self.drain()
                return
            step = PROCEDURE[request.step_id]
            who = ROLE_OF_STEP[step.roles[0]]
            data = {"number": number, "version": request.version, "step": step.id}
            if step.kind is StepKind.REVIEW:
                answer = await self.click(who, Verb.REVIEW_APPROVE.value, data)
            else:
                answer = await self.click(who, Verb.STEP_COMPLETE.value, {**data, **inputs_for(step.id, number)})
            assert answer["statusCode"] == 200 and answer["type"] == CARD, answer
            await self.drain()
        raise AssertionError(f"{number} never reached {step_id}")

    def approval_emails(self) -> list[Any]:
        folder = self.components.settings.data_dir / "correos"
        messages = [BytesParser(policy=policy.default).parse(p.open("rb")) for p in sorted(folder.glob("*.eml"))]
        return [m for m in messages if m["X-Claqueta-Key"].endswith("/correo-aprobacion")]


async def _office(tmp_path, originator: str):
    settings = Settings(_env_file=None, local_mode=True, app_id="", data_dir=tmp_path, now=NOW,
                        people_file=ROOT / "config" / "people.example.yaml", outlook_originator_id=originator)
    components = build(settings)
    async with FakeConnector() as connector:
        async with TestClient(TestServer(create_web_app(components, schedule_reminders=False,
                                                        dispatch_effects=False))) as client:
            office = Office(client, connector, components)
            for who in IDS:
                await office.say(who, "hola")  # everyone has a Teams chat with the bot
            await office.click("requester", Verb.INTAKE_SUBMIT.value, {
                Inputs.TITLE: "Spot Semana de la Inversión", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2027-03-15",
                Inputs.EXPECTED_TYPE: "A"})
            yield office


@pytest.fixture
async def office(tmp_path):
    async for o in _office(tmp_path, ORIGINATOR):
        yield o


@pytest.fixture
async def office_without_outlook(tmp_path):
    async for o in _office(tmp_path, ""):
        yield o


NUMBER = "2026-0001"


def card_in(message) -> dict:
    """The actionable card of an email: the JSON in the script block of the HTML head."""
    html = message.get_body(("html",)).get_content()
    head = html[:html.index("<body")]
    (payload,) = SCRIPT_TAG.findall(head)
    return json.loads(payload)


def executes(card: dict) -> dict[str, dict]:
    """verb → data of every Action.Execute button (the refresh action apart)."""
    body_and_actions = {k: v for k, v in card.items() if k != "refresh"}
    return {n["verb"]: n.get("data", {}) for n in walk(body_and_actions) if n.get("type") == "Action.Execute"}


def valid_outlook_card(card: dict) -> None:
    assert card["originator"] == ORIGINATOR and card["version"] == "1.4"
    assert not [n for n in walk(card) if n.get("type") == "Action.Submit"]  # Outlook shows none
    standard = {k: v for k, v in card.items() if k not in OUTLOOK_ONLY_PROPERTIES}
    jsonschema.validate(standard, SCHEMA)
    assert len(json.dumps(card).encode()) < 28 * 1024


def text_of(card: dict) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_the_email_asking_the_director_for_conformity_carries_the_approval_card(office):
    await office.walk_to(NUMBER, "PRE-14")
    request = await office.store.get(NUMBER)
    (message,) = office.approval_emails()
    assert message["To"] == DIRECTOR_EMAIL
    assert "[Solicitud 2026-0001] Spot Semana de la Inversión — PRE-14" in message["Subject"]
    html = message.get_body(("html",)).get_content()
    assert "Se solicita su conformidad en <b>PRE-14 Revisar el guion y storyboard</b>: ¿Es conforme?" in html
    assert f"https://proinversion.sharepoint.com/sites/ocoim/{NUMBER}/script" in html  # the material to review

    card = card_in(message)
    valid_outlook_card(card)
    assert card["hideOriginalBody"] is True
    assert card["refresh"]["userIds"] == [IDS[DIRECTOR]]
    assert card["refresh"]["action"]["verb"] == Verb.REQUEST_REFRESH.value
    buttons = executes(card)
    assert {Verb.REVIEW_APPROVE.value, Verb.REVIEW_CHANGES.value} <= set(buttons)
    for data in [*buttons.values(), card["refresh"]["action"]["data"]]:
        parsed = CardData.parse(data)
        assert (parsed.number, parsed.version, parsed.step) == (NUMBER, request.version, "PRE-14")
    assert "Dar conformidad" in text_of(card) and "Solicitar ajustes" in text_of(card)

    # The dispatcher running again (a retry, another instance) never sends it twice.
    await office.drain()
    assert len(office.approval_emails()) == 1


async def test_without_an_outlook_provider_the_director_still_gets_a_plain_email(office_without_outlook):
    office = office_without_outlook
    await office.walk_to(NUMBER, "PRE-14")
    (message,) = office.approval_emails()
    html = message.get_body(("html",)).get_content()
    assert "application/adaptivecard+json" not in html
    assert "desde Claqueta en Teams" in html


async def test_the_director_approves_from_the_email_card(office):
    await office.walk_to(NUMBER, "PRE-14")
    request = await office.store.get(NUMBER)
    card = card_in(office.approval_emails()[0])
    data = executes(card)[Verb.REVIEW_APPROVE.value]
    before = len(office.connector.calls)

    answer = await office.outlook(DIRECTOR, Verb.REVIEW_APPROVE.value, {**data, Inputs.APPROVE_COMMENT: "Conforme"})

    assert answer["statusCode"] == 200 and answer["type"] == CARD
    valid_outlook_card(answer["value"])  # it replaces the card in the email, so it keeps the originator
    assert Verb.REVIEW_APPROVE.value not in executes(answer["value"])
    moved = await office.store.get(NUMBER)
    assert moved.version == request.version + 1 and moved.step_id not in ("PRE-14", "PRE-16")
    history = await office.store.history(NUMBER)
    decided = [h for h in history if h.step_id == "PRE-14"]
    assert decided[-1].action == "review_approved" and decided[-1].actor_id == IDS[DIRECTOR]
    assert "Carmen Torres Villanueva revisó en PRE-14: es conforme" in decided[-1].summary
    assert len(office.connector.calls) == before  # the answer was the HTTP body: nothing posted to any chat


async def test_a_decision_in_teams_shows_in_the_email_when_it_is_opened(office):
    await office.walk_to(NUMBER, "PRE-14")
    card = card_in(office.approval_emails()[0])
    data = executes(card)[Verb.REVIEW_APPROVE.value]
    approved = await office.click(DIRECTOR, Verb.REVIEW_APPROVE.value, data)
    assert approved["type"] == CARD

    # Outlook calls the card's refresh action each time the email is opened.
    opened = await office.outlook(DIRECTOR, card["refresh"]["action"]["verb"], card["refresh"]["action"]["data"],
                                  trigger="automatic")

    assert opened["statusCode"] == 200 and opened["type"] == CARD
    valid_outlook_card(opened["value"])
    assert not {Verb.REVIEW_APPROVE.value, Verb.REVIEW_CHANGES.value} & set(executes(opened["value"]))
    shown = text_of(opened["value"])
    assert "Carmen Torres Villanueva dio conformidad: PRE-16" in shown and "04/12 10:00" in shown


async def test_a_decision_in_the_email_makes_the_teams_card_outdated(office):
    await office.walk_to(NUMBER, "PRE-14")
    request = await office.store.get(NUMBER)
    card = card_in(office.approval_emails()[0])
    await office.outlook(DIRECTOR, Verb.REVIEW_CHANGES.value,
                         {**executes(card)[Verb.REVIEW_CHANGES.value],
                          Inputs.CHANGES_OBSERVATION: "Cambiar la música del cierre"})
    assert (await office.store.get(NUMBER)).step_id == "PRE-15"

    # The card Teams showed the director carries the same data: approving from it now is refused, with the reason.
    old = await office.click(DIRECTOR, Verb.REVIEW_APPROVE.value,
                             {"number": NUMBER, "version": request.version, "step": "PRE-14"})
    shown = text_of(old["value"])
    assert "Esta tarjeta estaba desactualizada" in shown and "Carmen Torres Villanueva solicitó ajustes en PRE-14" in shown
    assert "originator" not in old["value"]  # Teams gets its own card
    assert (await office.store.get(NUMBER)).version == request.version + 1


async def test_a_click_in_an_email_leaves_the_teams_conversation_where_notices_go(office):
    await office.walk_to(NUMBER, "PRE-14")
    before = await office.store.get_reference(IDS[DIRECTOR])
    assert before["conversation"]["id"] == f"a:{DIRECTOR}"
    card = card_in(office.approval_emails()[0])
    await office.outlook(DIRECTOR, Verb.REQUEST_REFRESH.value, card["refresh"]["action"]["data"], trigger="automatic")
    await office.outlook(DIRECTOR, Verb.REVIEW_APPROVE.value, executes(card)[Verb.REVIEW_APPROVE.value])
    assert await office.store.get_reference(IDS[DIRECTOR]) == before
    assert before["serviceUrl"] == office.connector.service_url
