"""The coordinator's agenda in Teams: reminders and digest as cards, snooze, agenda, Excel export, brand reports."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from openpyxl import load_workbook

from cards.verbs import Inputs, Verb
from tests.test_bot_flow import IDS, card_of, chat, inputs_for, texts  # noqa: F401 (chat is a fixture)


async def _at_director_review(chat) -> str:
    """A DSI request waiting for its director at PRE-14 (everyone has talked to the bot once)."""
    for who in IDS:
        await chat.say(who, "hola")
    await chat.click("requester", Verb.INTAKE_SUBMIT.value, {
        Inputs.TITLE: "Spot Semana de la Inversión", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2027-01-08"})
    number, store = "2026-0001", chat.components.store
    roles = {"PRE-01": "coordinator", "PRE-02": "press", "PRE-03": "comms", "PRE-04": "designer",
             "PRE-05": "press", "PRE-10": "press", "PRE-13": "coordinator"}
    while (request := await store.get(number)).step_id != "PRE-14":
        verb = Verb.REVIEW_APPROVE if request.step_id == "PRE-10" else Verb.STEP_COMPLETE
        data = {"number": number, "version": request.version, "step": request.step_id,
                **inputs_for(request.step_id, number)}
        await chat.click(roles[request.step_id], verb.value, data)
    await drain(chat)
    return number


async def drain(chat) -> None:
    while await chat.components.dispatcher.run_once():
        pass


def delivered_to(chat, who: str, since: int = 0) -> list[dict]:
    return [c.body for c in chat.connector.delivered[since:] if f"a:{who}" in c.path]


async def test_a_late_director_gets_an_actionable_reminder_and_the_coordinator_a_digest(chat):
    number = await _at_director_review(chat)
    # PRE-14 has 3 working days: opened Fri 4 Dec, due Fri 11 Dec (8 and 9 Dec are holidays).
    chat.clock.set(chat.clock.now().replace(day=14, hour=8, minute=5))
    before = len(chat.connector.delivered)
    status, body = await chat.post_json("/api/jobs/reminders", token="programador")
    assert status == 200 and body["added"] >= 3
    await drain(chat)
    cards_to_director = [card_of(b) for b in delivered_to(chat, "director_dsi", before) if b.get("attachments")]
    reminder = [c for c in cards_to_director if c["body"][0]["text"].startswith("PRE-14 está vencido")]
    assert len(reminder) == 1
    digest = [texts(card_of(b)) for b in delivered_to(chat, "coordinator", before) if b.get("attachments")]
    assert any("Resumen del día" in d and "Esperan conformidad de directores (1)" in d for d in digest)
    assert any("Conformidad vencida: PRE-14" in d for d in digest)

    # The reminder's "Posponer un día" mutes tomorrow's reminder to the director.
    snooze = next(a for a in json.loads(texts(reminder[0]))["body"][-1]["actions"] if a["title"] == "Posponer un día")
    answer = await chat.click("director_dsi", snooze["verb"], snooze["data"])
    assert "no recibirá recordatorios de PRE-14" in answer["value"]
    chat.clock.advance(timedelta(days=1))
    before = len(chat.connector.delivered)
    await chat.post_json("/api/jobs/reminders", token="programador")
    await drain(chat)
    assert not [b for b in delivered_to(chat, "director_dsi", before)
                if b.get("attachments") and "vencido" in card_of(b)["body"][0]["text"]]
    # Running the job again the same morning sends nothing twice.
    again = len(chat.connector.delivered)
    await chat.post_json("/api/jobs/reminders", token="programador")
    await drain(chat)
    assert len(chat.connector.delivered) == again


async def test_the_reminder_trigger_needs_the_schedulers_token(chat):
    status, _ = await chat.post_json("/api/jobs/reminders", token="")
    assert status == 401
    status, _ = await chat.post_json("/api/jobs/reminders", token="otro")
    assert status == 401


async def test_agenda_filters_and_exports_the_tracking_table(chat):
    number = await _at_director_review(chat)
    agenda = texts(card_of((await chat.say("coordinator", "agenda"))[0]))
    assert number in agenda and "Preproducción (1)" in agenda and "Indicadores" in agenda
    filtered = await chat.click("coordinator", Verb.AGENDA_FILTER.value, {Inputs.FILTER_AREA: "DE"})
    assert number not in texts(filtered["value"])
    refused = await chat.say("requester", "agenda")
    assert any("para el equipo de OCOIM" in r.get("text", "") for r in refused)

    answer = await chat.click("coordinator", Verb.AGENDA_EXPORT.value, {})
    link = answer["value"].split("](")[1].rstrip(")")
    path = "/" + link.split("/", 3)[3]
    response = await chat.client.get(path)
    assert response.status == 200
    sheet = load_workbook(io.BytesIO(await response.read()))["Seguimiento"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][0] == number and rows[1][1] == "Spot Semana de la Inversión"
    assert (await chat.client.get(path.replace(path.split("/")[2], "adivinado"))).status == 404


async def test_an_ocoim_member_reports_a_brand_breach_to_the_coordinator(chat):
    for who in ("coordinator", "designer", "requester"):
        await chat.say(who, "hola")
    form = texts(card_of((await chat.say("designer", "reportar línea gráfica"))[0]))
    assert "Manual de Identidad Institucional" in form
    before = len(chat.connector.delivered)
    answer = await chat.click("designer", Verb.BRAND_REPORT.value,
                              {Inputs.BRAND_PIECE: "Video DSI en YouTube", Inputs.BRAND_DETAIL: "Logo deformado"})
    assert "fue enviado al Coordinador" in texts(answer["value"])
    await drain(chat)
    texts_to_coordinator = [b.get("text", "") for b in delivered_to(chat, "coordinator", before)]
    assert any("Logo deformado" in t and "Video DSI en YouTube" in t for t in texts_to_coordinator)
    outsider = await chat.click("requester", Verb.BRAND_REPORT.value, {Inputs.BRAND_PIECE: "x", Inputs.BRAND_DETAIL: "y"})
    assert outsider["statusCode"] == 403
