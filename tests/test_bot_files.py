"""A file shared in the Teams chat becomes a step's deliverable and is copied to the request's folder."""

from __future__ import annotations

import json

from aiohttp import web

from cards.verbs import Inputs, Verb
from procedure.model import Deliverable
from tests import activities
from tests.test_bot_flow import card_of, chat, inputs_for, texts, user  # noqa: F401 (chat is a fixture)

SCRIPT = b"Guion tecnico v1: escena 1, escena 2." * 100


async def _download_server():
    app = web.Application()
    app.router.add_get("/descargar/guion.docx", lambda request: web.Response(body=SCRIPT))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/descargar/guion.docx"


def file_message(chat, who: str, name: str, download_url: str) -> dict:
    """What Teams posts when someone shares a file in a 1:1 chat with the bot."""
    activity = activities.message("", service_url=chat.connector.service_url, user=user(who))
    activity["conversation"]["id"] = f"a:{who}"
    activity["attachments"] = [{
        "contentType": "application/vnd.microsoft.teams.file.download.info",
        "contentUrl": f"https://proinversion-my.sharepoint.com/personal/prensa/Documents/Microsoft Teams Chat Files/{name}",
        "name": name,
        "content": {"downloadUrl": download_url, "uniqueId": "1a2b3c", "fileType": "docx"},
    }]
    return activity


async def test_a_file_shared_in_the_chat_completes_the_step_and_lands_in_the_library(chat):
    runner, download_url = await _download_server()
    try:
        await chat.say("requester", "hola")
        await chat.click("requester", Verb.INTAKE_SUBMIT.value, {
            Inputs.TITLE: "Video institucional", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2027-03-15"})
        number = "2026-0001"
        await chat.click("coordinator", Verb.STEP_COMPLETE.value,
                         {"number": number, "version": 1, "step": "PRE-01", **inputs_for("PRE-01", number)})

        before = len(chat.connector.delivered)
        status, _ = await chat.post(file_message(chat, "press", "guion.docx", download_url))
        assert status == 200
        offer = card_of(chat.connector.delivered[before].body)
        assert "Archivo recibido" in texts(offer)
        button = next(a for a in offer["body"][-1]["actions"] if "PRE-02" in a["title"])
        assert button["title"] == "PRE-02 · Guion (N° 2026-0001)"

        opened = await chat.click("press", button["verb"], button["data"])
        card = opened["value"]
        assert "«guion.docx» se adjunta como Guion" in texts(card)
        complete = next(a for a in json.loads(texts(card))["body"][-5:]
                        for a in a.get("actions", []) if a.get("verb") == Verb.STEP_COMPLETE.value)
        prefilled = {Inputs.deliverable(Deliverable.SCRIPT): button["data"]["url"]}
        done = await chat.click("press", complete["verb"], {**complete["data"], **prefilled})
        assert done["statusCode"] == 200
        request = await chat.components.store.get(number)
        record = request.latest(Deliverable.SCRIPT)
        assert request.step_id == "PRE-03" and record.uploaded and record.name == "guion.docx"

        while await chat.components.dispatcher.run_once():
            pass
        copied = chat.components.settings.data_dir / "archivos" / "Solicitudes" / number / "guion.docx"
        assert copied.read_bytes() == SCRIPT
    finally:
        await runner.cleanup()


async def test_a_file_from_someone_with_nothing_pending_is_acknowledged(chat):
    await chat.say("designer", "hola")
    before = len(chat.connector.delivered)
    status, _ = await chat.post(file_message(chat, "designer", "logo.png", "http://127.0.0.1:9/logo.png"))
    assert status == 200
    reply = chat.connector.delivered[before].body
    assert "no tiene actividades pendientes que pidan un archivo" in reply["text"]
