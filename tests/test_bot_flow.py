"""The whole procedure walked through the bot over HTTP, as each role, with Teams' real activity JSON."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import build, create_web_app
from cards.verbs import OPTION_EMAIL, Inputs, Verb
from config.settings import Settings
from procedure.definition import PROCEDURE
from procedure.model import Deliverable, StepKind
from tests import activities
from tests.driving import NOW
from tests.fake_connector import FakeConnector

ROOT = Path(__file__).resolve().parents[1]
IDS = {
    "coordinator": "7d1e0a51-0000-4000-8000-000000000002",
    "press": "7d1e0a51-0000-4000-8000-000000000003",
    "comms": "7d1e0a51-0000-4000-8000-000000000004",
    "designer": "7d1e0a51-0000-4000-8000-000000000005",
    "director_dsi": "7d1e0a51-0000-4000-8000-000000000102",
    "director_de": "7d1e0a51-0000-4000-8000-000000000101",
    "requester": "00000000-0000-0000-0000-0000000000020",  # Alex Wilber, DSI
}
ROLE_OF_STEP = {"COORDINATOR": "coordinator", "PRESS": "press", "COMMS": "comms", "DESIGNER": "designer",
                "OCOIM_TEAM": "press", "DIRECTOR": "director_dsi"}


def user(key: str) -> dict:
    return {"id": f"29:{key}", "aadObjectId": IDS[key], "name": key}


class Chat:
    def __init__(self, client: TestClient, connector: FakeConnector):
        self.client, self.connector = client, connector

    async def post(self, activity: dict):
        response = await self.client.post("/api/messages", json=activity)
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body

    async def say(self, who: str, text: str) -> list[dict]:
        before = len(self.connector.delivered)
        status, _ = await self.post(activities.message(text, service_url=self.connector.service_url,
                                                       user=user(who), conversation_id=f"a:{who}"))
        assert status == 200
        return [c.body for c in self.connector.delivered[before:]]

    async def post_json(self, path: str, *, token: str) -> tuple[int, dict]:
        response = await self.client.post(path, headers={"Authorization": f"Bearer {token}"} if token else {})
        return response.status, await response.json()

    async def click(self, who: str, verb: str, data: dict) -> dict:
        activity = activities.card_action(verb, data, service_url=self.connector.service_url, user=user(who))
        activity["conversation"]["id"] = f"a:{who}"
        status, body = await self.post(activity)
        assert status == 200
        return body


@pytest.fixture
async def chat(tmp_path):
    settings = Settings(_env_file=None, local_mode=True, app_id="", data_dir=tmp_path, now=NOW,
                        people_file=ROOT / "config" / "people.example.yaml", scheduler_token="programador")
    components = build(settings)
    async with FakeConnector() as connector:
        async with TestClient(TestServer(create_web_app(components, schedule_reminders=False, dispatch_effects=False))) as client:
            c = Chat(client, connector)
            c.components = components
            c.clock = components.clock
            yield c


def card_of(activity_body: dict) -> dict:
    return activity_body["attachments"][0]["content"]


def texts(card: dict) -> str:
    return json.dumps(card, ensure_ascii=False)


def card_data(card: dict) -> dict:
    return dict(card["refresh"]["action"]["data"])


def inputs_for(step_id: str, number: str) -> dict:
    step = PROCEDURE[step_id]
    data = {Inputs.deliverable(k): f"https://proinversion.sharepoint.com/sites/ocoim/{number}/{k.value}"
            for k in step.deliverables if k not in (Deliverable.ARCHIVE_PATH, Deliverable.DISTRIBUTION_CHANNELS)}
    if step_id == "PRE-01":
        data.update({Inputs.PIECE_TYPE: "A", Inputs.TOPIC: "promotional", Inputs.INVESTMENT_PROJECT: "false",
                     Inputs.AUDIENCE: "external", Inputs.SERVICES: "animation,editing",
                     Inputs.OUTSIDE_PRODUCER: "false"})
    if step.kind is StepKind.MEETING:
        day = date(2026, 12, 15)
        data.update({Inputs.MEETING_DATE: day.isoformat(), Inputs.MEETING_TIME: "10:00",
                     Inputs.MEETING_MINUTES: "60"})
    if step_id == "PRO-01":
        data[Inputs.PRODUCTION_DEADLINE] = "2027-02-15"
    if step_id == "POS-08":
        data[Inputs.CHANNELS] = "social,portal"
    return data


async def test_type_a_request_walked_through_the_bot_with_an_adjust_loop_at_each_review(chat):
    await walk_type_a_with_adjustments(chat)


async def walk_type_a_with_adjustments(chat) -> None:
    for who in IDS:
        await chat.say(who, "hola")  # everyone has talked to the bot once: it can reach them later

    replies = await chat.say("requester", "quiero un video")
    form = card_of(replies[0])
    assert "Título" in texts(form) and "Área usuaria" in texts(form)

    # A form with errors comes back with Spanish messages, next to the fields.
    refused = await chat.click("requester", Verb.INTAKE_SUBMIT.value, {Inputs.TITLE: "", Inputs.AREA: "DSI",
                                                                        Inputs.DUE_DATE: "2020-01-01"})
    assert refused["statusCode"] == 200
    assert "La fecha de entrega no puede estar en el pasado." in texts(refused["value"])
    assert "Indique el título de la solicitud." in texts(refused["value"])

    filed = await chat.click("requester", Verb.INTAKE_SUBMIT.value, {
        Inputs.TITLE: "Spot Semana de la Inversión", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2027-03-15",
        Inputs.EXPECTED_TYPE: "A", Inputs.PURPOSE: "Redes sociales", Inputs.LINKS: "https://www.gob.pe/proinversion"})
    assert filed["type"] == "application/vnd.microsoft.card.adaptive"
    assert "2026-0001" in texts(filed["value"])
    number = "2026-0001"
    store = chat.components.store

    adjusted: set[str] = set()
    visited = []
    for _ in range(60):
        request = await store.get(number)
        if request.step_id == "END":
            break
        step = PROCEDURE[request.step_id]
        role = step.internal_audience_role if False else step.roles[0]
        who = ROLE_OF_STEP[role]
        data = {"number": number, "version": request.version, "step": step.id}
        if step.kind is StepKind.REVIEW:
            if step.id not in adjusted:
                adjusted.add(step.id)
                answer = await chat.click(who, Verb.REVIEW_CHANGES.value,
                                          {**data, Inputs.CHANGES_OBSERVATION: "Ajustar el cierre **urgente**"})
            else:
                answer = await chat.click(who, Verb.REVIEW_APPROVE.value, data)
        else:
            answer = await chat.click(who, Verb.STEP_COMPLETE.value, {**data, **inputs_for(step.id, number)})
        assert answer["statusCode"] == 200 and answer["type"] == "application/vnd.microsoft.card.adaptive", answer
        visited.append(step.id)
        while await chat.components.dispatcher.run_once():
            pass
        moved = await store.get(number)
        assert moved.version == request.version + 1, (step.id, texts(answer["value"])[:600])

    final = await store.get(number)
    assert final.status.value == "delivered"
    for review in ("PRE-10", "PRE-14", "PRO-07", "PRO-11", "POS-04"):
        assert final.rounds(review) == 2
    assert visited[:6] == ["PRE-01", "PRE-02", "PRE-03", "PRE-04", "PRE-05", "PRE-10"]

    # The dispatcher delivered cards proactively: the DSI director got the approval cards.
    dispatcher = chat.components.dispatcher
    while await dispatcher.run_once():
        pass
    to_director = [c.body for c in chat.connector.delivered
                   if c.body.get("attachments") and "a:director_dsi" in c.path]
    step_cards = [texts(card_of(b)) for b in to_director]
    assert any("PRE-14" in t and "Dar conformidad" in t for t in step_cards)
    assert any("PRO-11" in t for t in step_cards) and any("POS-04" in t for t in step_cards)
    # The requester heard of the milestones.
    to_requester = [c.body.get("text", "") for c in chat.connector.delivered if "a:requester" in c.path]
    assert any("La pieza audiovisual fue entregada." in t for t in to_requester)


async def _filed(chat) -> str:
    await chat.say("requester", "hola")
    await chat.click("requester", Verb.INTAKE_SUBMIT.value, {
        Inputs.TITLE: "Video institucional", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2027-03-15"})
    return "2026-0001"


async def test_the_same_click_delivered_three_times_changes_the_request_once(chat):
    number = await _filed(chat)
    data = {"number": number, "version": 1, "step": "PRE-01", **inputs_for("PRE-01", number)}
    answers = [await chat.click("coordinator", Verb.STEP_COMPLETE.value, data) for _ in range(3)]
    request = await chat.components.store.get(number)
    assert request.version == 2 and request.step_id == "PRE-02"
    assert len(await chat.components.store.history(number)) == 2
    assert all(a["statusCode"] == 200 for a in answers)
    assert "desactualizada" in texts(answers[2]["value"]) and "completó PRE-01" in texts(answers[2]["value"])


async def test_a_stale_card_shows_who_did_what_and_when(chat):
    number = await _filed(chat)
    await chat.click("coordinator", Verb.STEP_COMPLETE.value,
                     {"number": number, "version": 1, "step": "PRE-01", **inputs_for("PRE-01", number)})
    old = await chat.click("coordinator", Verb.REQUEST_HOLD.value,
                           {"number": number, "version": 1, "step": "PRE-01", Inputs.HOLD_REASON: "x"})
    text = texts(old["value"])
    assert "Esta tarjeta estaba desactualizada" in text and "Rosa Quispe Huamán completó PRE-01" in text
    assert (await chat.components.store.get(number)).status.value == "active"


async def test_a_person_without_the_role_cannot_move_the_request(chat):
    number = await _filed(chat)
    data = {"number": number, "version": 1, "step": "PRE-01", **inputs_for("PRE-01", number)}
    answer = await chat.click("designer", Verb.STEP_COMPLETE.value, data)
    assert answer["statusCode"] == 200
    assert "PRE-01 corresponde a: Coordinador" in texts(answer["value"])
    assert (await chat.components.store.get(number)).version == 1


async def test_forged_verbs_and_numbers_are_refused_politely(chat):
    number = await _filed(chat)
    unknown = await chat.click("coordinator", "request.delete", {"number": number, "version": 1})
    assert unknown["statusCode"] == 400 and "no existe" in unknown["value"]["message"]
    ghost = await chat.click("coordinator", Verb.REVIEW_APPROVE.value, {"number": "2026-9999", "version": 1})
    assert ghost["statusCode"] == 404
    garbage = await chat.click("coordinator", Verb.REVIEW_APPROVE.value, {"number": number, "version": "x"})
    assert garbage["statusCode"] == 400
    outsider = await chat.click("director_de", Verb.REQUEST_SHOW.value, {"number": number, "version": 1})
    assert outsider["statusCode"] == 403
    assert (await chat.components.store.get(number)).version == 1


async def test_commands_answer_in_spanish(chat):
    await chat.say("requester", "hola")
    help_card = texts(card_of((await chat.say("requester", "ayuda"))[0]))
    assert "nueva solicitud" in help_card and "mis pendientes" in help_card
    unknown = await chat.say("requester", "xyzzy")
    assert any("No entendí" in r.get("text", "") for r in unknown)
    number = await _filed(chat)
    status = texts(card_of((await chat.say("requester", f"estado {number}"))[0]))
    assert "PRE-01" in status and "Video institucional" in status
    history = texts(card_of((await chat.say("requester", "historial 1"))[0]))
    assert "registró la solicitud" in history
    pending = texts(card_of((await chat.say("coordinator", "mis pendientes"))[0]))
    assert number in pending
    nothing = texts(card_of((await chat.say("designer", "mis pendientes"))[0]))
    assert "No tiene actividades pendientes" in nothing
    hidden = texts(card_of((await chat.say("director_de", f"estado {number}"))[0]))
    assert "No participa" in hidden


async def test_local_mode_lets_one_person_take_any_role(chat):
    number = await _filed(chat)
    replies = await chat.say("requester", "rol coordinador")
    assert any("Modo local: ahora también tiene el rol Coordinador(a)" in r.get("text", "") for r in replies)
    answer = await chat.click("requester", Verb.STEP_COMPLETE.value,
                              {"number": number, "version": 1, "step": "PRE-01", **inputs_for("PRE-01", number)})
    assert answer["statusCode"] == 200
    assert (await chat.components.store.get(number)).step_id == "PRE-02"


def test_every_verb_a_card_can_send_has_a_handler():
    from bot.claqueta_bot import verb as registry

    assert [v for v in Verb if v.value not in registry.handlers] == []


async def test_the_request_can_be_corrected_but_its_title_never_changes(chat):
    number = await _filed(chat)
    data = {"number": number, "version": 1, Inputs.EDIT_PURPOSE: "Portal y redes", "title": "Otro título"}
    refused = await chat.click("requester", Verb.REQUEST_EDIT.value, data)
    assert "El título de la solicitud no puede cambiar" in texts(refused["value"])
    del data["title"]
    await chat.click("requester", Verb.REQUEST_EDIT.value, data)
    request = await chat.components.store.get(number)
    assert request.purpose == "Portal y redes" and request.title == "Video institucional"


async def test_free_slots_are_offered_when_proposing_a_meeting(chat):
    number = await _filed(chat)
    answer = await chat.click("coordinator", Verb.MEETING_SLOTS.value,
                              {"number": number, "version": 1, "step": "PRE-01", Inputs.MEETING_DATE: "2026-12-10"})
    assert "Horarios libres: 10/12 09:00" in texts(answer["value"])


async def test_an_area_sends_a_third_party_piece_and_ocoim_gives_conformity(chat):
    for who in ("requester", "coordinator"):
        await chat.say(who, "hola")
    form = texts(card_of((await chat.say("requester", "pieza de terceros"))[0]))
    assert "Enlace a la pieza" in form
    refused = await chat.click("requester", Verb.THIRD_PARTY_SUBMIT.value, {
        Inputs.TITLE: "Spot Línea 2", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2026-12-18"})
    assert "Indique el enlace a la pieza audiovisual" in texts(refused["value"])
    filed = await chat.click("requester", Verb.THIRD_PARTY_SUBMIT.value, {
        Inputs.TITLE: "Spot Línea 2", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2026-12-18",
        Inputs.PIECE_URL: "https://youtu.be/spot-l2", Inputs.PRODUCER: "Productora Andina"})
    number = "2026-0001"
    assert number in texts(filed["value"])
    changes = await chat.click("coordinator", Verb.REVIEW_CHANGES.value, {
        "number": number, "version": 1, "step": "TER-01", Inputs.CHANGES_OBSERVATION: "El logo no es el vigente."})
    assert "TER-02" in texts(changes["value"])
    await chat.click("requester", Verb.STEP_COMPLETE.value, {
        "number": number, "version": 2, "step": "TER-02", Inputs.deliverable(Deliverable.FINAL_VERSION):
        "https://youtu.be/spot-l2-v2"})
    await chat.click("coordinator", Verb.REVIEW_APPROVE.value, {"number": number, "version": 3, "step": "TER-01"})
    request = await chat.components.store.get(number)
    assert request.status.value == "delivered" and request.latest(Deliverable.FINAL_VERSION).ref.endswith("-v2")
    history = [h.summary for h in await chat.components.store.history(number)]
    assert history[-1] == ("Rosa Quispe Huamán dio conformidad: TER-03 «Dar conformidad a la pieza audiovisual "
                           "elaborada por terceros».")


async def test_the_welcome_card_comes_once_then_a_short_greeting(chat):
    first = await chat.say("requester", "hola")
    assert first[0]["attachments"][0]["content"]["body"][0]["text"].startswith("Hola, soy Claqueta")
    again = await chat.say("requester", "hola")
    assert again[0]["text"].startswith("¡Hola, Alex! Escriba «nueva solicitud»")  # the directory's name
