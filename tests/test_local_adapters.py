"""The embedded default adapters: directory from YAML, .eml mailer, .ics calendar, folder file store, log notifier."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiohttp import web
from icalendar import Calendar as ICalendar

from config.settings import CONFIG_DIR
from local.calendar import IcsCalendar
from local.clock import LIMA, FixedClock
from local.directory import DirectoryConfigError, DirectoryError, YamlDirectory
from local.files import FolderFileStore, UnsafePath
from local.mailer import EmlMailer
from local.notifier import LogNotifier
from procedure.roles import Role
from services.ports import Calendar, Directory, Email, FileStore, Mailer, MeetingRequest, Notifier, Unreachable

EXAMPLE = CONFIG_DIR / "people.example.yaml"
PLAYGROUND_AAD_ID = "00000000-0000-0000-0000-0000000000020"  # Agents Playground's default user, Alex Wilber
PLAYGROUND_USER_ID = "user-id-0"

MINIMAL = """
areas:
  DE: {name: Dirección Ejecutiva, director: p-dir}
  DSI: {name: Dirección de Servicios al Inversionista}
people:
  - {id: p-dir, name: Jorge Gutiérrez, email: jg@proinversion.example, area: DE}
  - {id: p-coord, name: Rosa Quispe, email: rq@proinversion.example, area: DE, roles: [COORDINATOR]}
  - {id: p-req, name: Sofía Ramírez, email: sr@proinversion.example, area: DSI, roles: [REQUESTER]}
"""


def write(tmp_path: Path, text: str, name: str = "people.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ── Directory ────────────────────────────────────────────────────────────────────────────────────


async def test_example_file_covers_every_role_and_area():
    directory = YamlDirectory(EXAMPLE)
    assert isinstance(directory, Directory)
    for role in Role:
        assert await directory.people_with_role(role.value), f"nadie con el rol {role.value}"
    areas = await directory.areas()
    assert areas["DE"] == "Dirección Ejecutiva"
    assert areas["DSI"] == "Dirección de Servicios al Inversionista"
    assert {"SASA", "DPP", "DEP", "OCOIM"} <= set(areas)
    for code in areas:
        director = await directory.director_of(code)
        assert director is not None and code in director.directs and director.has(Role.DIRECTOR)
    team = {p.name for p in await directory.people_with_role(Role.OCOIM_TEAM.value)}
    press_and_comms = {p.name for r in (Role.PRESS, Role.COMMS) for p in await directory.people_with_role(r.value)}
    assert team == press_and_comms


async def test_playground_default_user_is_a_requester_of_an_area():
    directory = YamlDirectory(EXAMPLE)
    by_aad = await directory.person(PLAYGROUND_AAD_ID)
    by_teams_id = await directory.person(PLAYGROUND_USER_ID)
    assert by_aad == by_teams_id
    assert by_aad.name == "Alex Wilber" and by_aad.has(Role.REQUESTER)
    assert by_aad.area in await directory.areas()


async def test_unknown_person_is_none():
    assert await YamlDirectory(EXAMPLE).person("nobody") is None


def test_unknown_role_error_names_the_person_and_the_role(tmp_path):
    broken = MINIMAL.replace("roles: [COORDINATOR]", "roles: [COORDINADOR]")
    with pytest.raises(DirectoryConfigError) as err:
        YamlDirectory(write(tmp_path, broken))
    assert "p-coord" in str(err.value) and "COORDINADOR" in str(err.value)


def test_team_role_is_refused_with_what_to_use_instead(tmp_path):
    broken = MINIMAL.replace("roles: [COORDINATOR]", "roles: [OCOIM_TEAM]")
    with pytest.raises(DirectoryConfigError, match="PRESS y COMMS"):
        YamlDirectory(write(tmp_path, broken))


def test_director_who_is_not_a_person_is_named(tmp_path):
    broken = MINIMAL.replace("director: p-dir", "director: p-ghost")
    with pytest.raises(DirectoryConfigError) as err:
        YamlDirectory(write(tmp_path, broken))
    assert "DE" in str(err.value) and "p-ghost" in str(err.value)


def test_duplicate_id_is_named(tmp_path):
    broken = MINIMAL.replace("id: p-req", "id: p-coord")
    with pytest.raises(DirectoryConfigError, match="p-coord"):
        YamlDirectory(write(tmp_path, broken))


def test_unknown_area_and_broken_yaml_are_explained(tmp_path):
    with pytest.raises(DirectoryConfigError, match="XYZ"):
        YamlDirectory(write(tmp_path, MINIMAL.replace("area: DSI", "area: XYZ")))
    with pytest.raises(DirectoryConfigError, match="línea"):
        YamlDirectory(write(tmp_path, "areas: {DE: [unclosed\npeople: []\n", "bad.yaml"))


async def test_granted_director_role_survives_a_restart(tmp_path):
    people, overrides = write(tmp_path, MINIMAL), tmp_path / "data" / "directory.json"
    first = YamlDirectory(people, overrides)
    await first.grant_role("p-req", "DIRECTOR", "DE")

    second = YamlDirectory(people, overrides)
    director = await second.director_of("DE")
    assert director.id == "p-req" and director.directs == {"DE"} and director.has(Role.DIRECTOR)
    assert director.has(Role.REQUESTER)  # granting adds: the person keeps what they had
    former = await second.person("p-dir")
    assert not former.has(Role.DIRECTOR) and not former.directs


async def test_exclusive_grant_and_revoke(tmp_path):
    people, overrides = write(tmp_path, MINIMAL), tmp_path / "directory.json"
    directory = YamlDirectory(people, overrides)
    await directory.grant_role("p-dir", Role.COORDINATOR, exclusive=True)
    person = await directory.person("p-dir")
    assert person.roles == {Role.COORDINATOR} and await directory.director_of("DE") is None

    await directory.revoke_role("p-coord", Role.COORDINATOR)
    assert [p.id for p in await YamlDirectory(people, overrides).people_with_role("COORDINATOR")] == ["p-dir"]


async def test_role_changes_that_cannot_be_made_are_explained(tmp_path):
    directory = YamlDirectory(write(tmp_path, MINIMAL))
    with pytest.raises(DirectoryError, match="PRESS y COMMS"):
        await directory.grant_role("p-req", "OCOIM_TEAM")
    with pytest.raises(DirectoryError, match="Área desconocida"):
        await directory.grant_role("p-req", "DIRECTOR", "XYZ")
    with pytest.raises(DirectoryError, match="no-one"):
        await directory.grant_role("no-one", "COORDINATOR")
    with pytest.raises(DirectoryError, match="Rol desconocido"):
        await directory.grant_role("p-req", "JEFE")


async def test_person_seen_in_teams_is_registered_as_requester_without_area(tmp_path):
    people, overrides = write(tmp_path, MINIMAL), tmp_path / "directory.json"
    directory = YamlDirectory(people, overrides)
    assert await directory.person("29:new") is None
    person = await directory.ensure_person("29:new", "Carlos Núñez", "cn@proinversion.example")
    assert person.roles == {Role.REQUESTER} and person.area == "" and person.name == "Carlos Núñez"

    again = await YamlDirectory(people, overrides).person("29:new")
    assert again == person
    assert (await directory.ensure_person("p-coord", "Otro nombre")).name == "Rosa Quispe"


async def test_name_matching_only_when_asked(tmp_path):
    people, overrides = write(tmp_path, MINIMAL), tmp_path / "directory.json"
    assert await YamlDirectory(people).person("rosa  quispe") is None
    local = YamlDirectory(people, overrides, match_names=True)
    assert (await local.person("rosa  quispe")).id == "p-coord"
    # A Teams id met with a known name is remembered, so it works without name matching afterwards.
    await local.ensure_person("user-id-7", "Rosa Quispe")
    assert (await YamlDirectory(people, overrides).person("user-id-7")).id == "p-coord"


def test_unreadable_overrides_are_not_silently_dropped(tmp_path):
    overrides = write(tmp_path, "{not json", "directory.json")
    with pytest.raises(DirectoryConfigError, match="directory.json"):
        YamlDirectory(write(tmp_path, MINIMAL), overrides)


# ── Mailer ───────────────────────────────────────────────────────────────────────────────────────


def read_eml(path: str):
    with open(path, "rb") as fh:
        return BytesParser(policy=policy.default).parse(fh)


async def test_eml_keeps_spanish_text_and_html_as_given(tmp_path):
    mailer = EmlMailer(tmp_path / "mail", clock=FixedClock(datetime(2026, 12, 10, 9, 30)))
    assert isinstance(mailer, Mailer)
    html = "<html><body><p>Revisión del guion — año 2026: «conformidad» &lt;urgente&gt; &amp; ñandú</p></body></html>"
    result = await mailer.send(Email(to=("rq@proinversion.example", "sr@proinversion.example"),
                                     cc=("jg@proinversion.example",),
                                     subject="[Solicitud 2026-0001] Campaña de inversión — PRE-01 Comprensión",
                                     html=html, idempotency_key="2026-0001/PRE-01/email"))
    message = read_eml(result["path"])
    assert message["Subject"] == "[Solicitud 2026-0001] Campaña de inversión — PRE-01 Comprensión"
    assert message["To"] == "rq@proinversion.example, sr@proinversion.example"
    assert message["Cc"] == "jg@proinversion.example"
    assert "ocoim@proinversion.example" in message["From"]
    assert message["Message-ID"] == result["id"]
    body = message.get_body(("html",))
    assert body.get_content_charset() == "utf-8"
    assert body.get_content().strip() == html  # neither unescaped nor escaped twice


async def test_same_key_is_written_once(tmp_path):
    mailer = EmlMailer(tmp_path)
    email = Email(to=("a@proinversion.example",), subject="Uno", html="<p>uno</p>", idempotency_key="k/1")
    first = await mailer.send(email)
    again = await mailer.send(Email(to=("b@proinversion.example",), subject="Dos", html="<p>dos</p>",
                                    idempotency_key="k/1"))
    assert list(tmp_path.glob("*.eml")) == [Path(first["path"])]
    assert again["id"] == first["id"] and again["path"] == first["path"]
    assert read_eml(first["path"])["Subject"] == "Uno"
    # Keys that clean up to the same file name still get files of their own.
    other = await mailer.send(Email(to=("a@proinversion.example",), subject="Tres", html="<p>3</p>",
                                    idempotency_key="k_1"))
    assert other["path"] != first["path"] and len(list(tmp_path.glob("*.eml"))) == 2


async def test_approval_card_is_embedded_as_an_actionable_message(tmp_path):
    card = {"type": "AdaptiveCard", "version": "1.0", "originator": "x",
            "body": [{"type": "TextBlock", "text": "¿Conforme? </script><b>no</b> & más"}]}
    result = await EmlMailer(tmp_path).send(Email(
        to=("jg@proinversion.example",), subject="Conformidad", idempotency_key="card",
        html="<html><body><p>Dé su conformidad</p></body></html>", approval_card=card))
    html = read_eml(result["path"]).get_body(("html",)).get_content()
    head = re.search(r"<head>(.*)</head>", html, re.S).group(1)
    script = re.fullmatch(r'<script type="application/adaptivecard\+json">(.*)</script>', head, re.S)
    assert json.loads(script.group(1)) == card
    assert html.count("</script>") == 1 and "<p>Dé su conformidad</p>" in html


# ── Calendar ─────────────────────────────────────────────────────────────────────────────────────


def meeting(start: datetime, minutes: int = 60, tx: str = "2026-0001/PRE-05/meeting") -> MeetingRequest:
    return MeetingRequest(subject="Revisión del guion y storyboard — PRE-05", start=start, minutes=minutes,
                          attendees=("rq@proinversion.example", "jg@proinversion.example"),
                          body_html="<p>Revisión de la propuesta: <b>guion</b></p>", transaction_id=tx)


async def test_ics_parses_back_with_lima_time_attendees_and_uid(tmp_path):
    calendar = IcsCalendar(tmp_path, clock=FixedClock(datetime(2026, 12, 1, 8)))
    assert isinstance(calendar, Calendar)
    result = await calendar.create_meeting(meeting(datetime(2026, 12, 10, 10, 0, tzinfo=LIMA)))
    assert result["join_url"].startswith("https://teams.microsoft.com/l/meetup-join/local-")

    raw = Path(result["path"]).read_bytes()
    assert b"DTSTART;TZID=America/Lima:20261210T100000" in raw
    parsed = ICalendar.from_ical(raw)
    assert [str(tz["TZID"]) for tz in parsed.walk("VTIMEZONE")] == ["America/Lima"]
    event = parsed.walk("VEVENT")[0]
    start = event.decoded("DTSTART")
    assert start == datetime(2026, 12, 10, 10, 0, tzinfo=LIMA) and str(start.tzinfo) == "America/Lima"
    assert event.decoded("DTEND") - start == timedelta(hours=1)
    assert str(event["UID"]) == "2026-0001/PRE-05/meeting" == result["id"]
    assert {str(a) for a in event["ATTENDEE"]} == {"mailto:rq@proinversion.example", "mailto:jg@proinversion.example"}
    assert str(event["ORGANIZER"]) == "mailto:ocoim@proinversion.example"
    assert str(event["SUMMARY"]) == "Revisión del guion y storyboard — PRE-05"
    assert str(event["URL"]) == result["join_url"] and result["join_url"] in str(event["LOCATION"])
    assert "Revisión de la propuesta: guion" in str(event["DESCRIPTION"])


async def test_same_transaction_is_one_event(tmp_path):
    calendar = IcsCalendar(tmp_path)
    first = await calendar.create_meeting(meeting(datetime(2026, 12, 10, 10, 0)))
    again = await calendar.create_meeting(meeting(datetime(2026, 12, 11, 15, 0)))
    assert len(list(tmp_path.glob("*.ics"))) == 1
    assert (again["id"], again["join_url"], again["path"]) == (first["id"], first["join_url"], first["path"])
    event = ICalendar.from_ical(Path(first["path"]).read_bytes()).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == datetime(2026, 12, 10, 10, 0, tzinfo=LIMA)  # the first one stands


async def test_free_slots_skip_holidays_weekends_and_busy_time(tmp_path):
    calendar = IcsCalendar(tmp_path, clock=FixedClock(datetime(2026, 12, 1, 8)))
    assert await calendar.free_slots((), date(2026, 12, 8), 60) == []  # Inmaculada Concepción
    assert await calendar.free_slots((), date(2026, 12, 12), 60) == []  # Saturday

    day = date(2026, 12, 10)
    assert await calendar.free_slots((), day, 60) == [datetime(2026, 12, 10, h, m, tzinfo=LIMA)
                                                     for h, m in ((9, 0), (9, 30), (10, 0), (10, 30), (11, 0))]
    await calendar.create_meeting(meeting(datetime(2026, 12, 10, 9, 0), minutes=210, tx="morning"))
    await calendar.create_meeting(meeting(datetime(2026, 12, 10, 14, 0), minutes=90, tx="afternoon"))
    slots = await calendar.free_slots(("rq@proinversion.example",), day, 60)
    # 12:30 would run into lunch; 17:30 past the end of the day.
    assert slots == [datetime(2026, 12, 10, h, m, tzinfo=LIMA) for h, m in ((15, 30), (16, 0), (16, 30), (17, 0))]


async def test_free_slots_never_propose_the_past(tmp_path):
    calendar = IcsCalendar(tmp_path, clock=FixedClock(datetime(2026, 12, 10, 16, 10)))
    assert await calendar.free_slots((), date(2026, 12, 10), 30) == [
        datetime(2026, 12, 10, h, m, tzinfo=LIMA) for h, m in ((16, 30), (17, 0), (17, 30))]


# ── File store ───────────────────────────────────────────────────────────────────────────────────


async def test_every_version_is_kept(tmp_path):
    store = FolderFileStore(tmp_path)
    assert isinstance(store, FileStore)
    results = [await store.put("Solicitudes/2026-0001", "guion final.docx", f"versión {i}".encode())
               for i in (1, 2, 3)]
    assert [r["id"] for r in results] == ["Solicitudes/2026-0001/guion final.docx",
                                          "Solicitudes/2026-0001/guion final (v2).docx",
                                          "Solicitudes/2026-0001/guion final (v3).docx"]
    assert [(tmp_path / r["id"]).read_text(encoding="utf-8") for r in results] == ["versión 1", "versión 2",
                                                                                  "versión 3"]
    assert results[0]["url"] == (tmp_path / results[0]["id"]).resolve().as_uri()


@pytest.mark.parametrize("folder,name", [("../fuera", "a.txt"), ("a/../../fuera", "a.txt"), ("/etc", "a.txt"),
                                         ("ok", "../a.txt"), ("ok", "sub/a.txt"), ("ok", ".."), ("C:\\x", "a")])
async def test_paths_leaving_the_root_are_refused(tmp_path, folder, name):
    root = tmp_path / "root"
    with pytest.raises(UnsafePath):
        await FolderFileStore(root).put(folder, name, b"x")
    assert not (tmp_path / "fuera").exists() and not (tmp_path / "a.txt").exists()


async def test_local_files_outside_the_root_cannot_be_copied(tmp_path):
    secret = write(tmp_path, "secreto", "secret.txt")
    store = FolderFileStore(tmp_path / "root")
    with pytest.raises(UnsafePath):
        await store.copy_from_url("x", "copia.txt", secret.as_uri())
    with pytest.raises(UnsafePath):
        await store.archive([secret.as_uri()], "Archivo/2026")
    with pytest.raises(UnsafePath):
        await store.archive(["../secret.txt"], "Archivo/2026")


@pytest.fixture
async def loopback():
    async def video(request: web.Request) -> web.Response:
        return web.Response(body=b"\x00\x01video" * 1000, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/corte-preliminar.mp4", video)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_copy_from_url_downloads_over_http(tmp_path, loopback):
    store = FolderFileStore(tmp_path)
    result = await store.copy_from_url("Solicitudes/2026-0001", "corte.mp4", f"{loopback}/corte-preliminar.mp4")
    assert (tmp_path / result["id"]).read_bytes() == b"\x00\x01video" * 1000
    copy = await store.copy_from_url("Solicitudes/2026-0002", "corte.mp4", result["url"])
    assert (tmp_path / copy["id"]).read_bytes() == b"\x00\x01video" * 1000

    with pytest.raises(OSError, match="404"):
        await store.copy_from_url("Solicitudes/2026-0001", "falta.mp4", f"{loopback}/no-existe.mp4")
    assert sorted(p.name for p in (tmp_path / "Solicitudes/2026-0001").iterdir()) == ["corte.mp4"]


async def test_archive_copies_files_and_links_once(tmp_path):
    store = FolderFileStore(tmp_path)
    final = await store.put("Solicitudes/2026-0001", "video final.mp4", b"final")
    guion = await store.put("Solicitudes/2026-0001", "guion.docx", b"guion")
    refs = [final["url"], guion["id"], "https://proinversion.sharepoint.example/sites/ocoim/storyboard.pdf"]
    result = await store.archive(refs, "Archivo/2026/12/Campaña de inversión")
    folder = tmp_path / result["path"]
    assert result["path"] == "Archivo/2026/12/Campaña de inversión"
    assert (folder / "video final.mp4").read_bytes() == b"final"
    assert "URL=https://proinversion.sharepoint.example/sites/ocoim/storyboard.pdf" in (
        folder / "storyboard.pdf.url").read_text(encoding="utf-8")

    await store.archive(refs, "Archivo/2026/12/Campaña de inversión")  # a retry adds nothing
    assert sorted(p.name for p in folder.iterdir()) == ["guion.docx", "storyboard.pdf.url", "video final.mp4"]


# ── Notifier and clock ───────────────────────────────────────────────────────────────────────────


async def test_notifications_are_logged_one_per_line(tmp_path):
    notifier = LogNotifier(tmp_path / "notificaciones.jsonl", unreachable={"p-nuevo"},
                           clock=FixedClock(datetime(2026, 12, 10, 9, 0)))
    assert isinstance(notifier, Notifier)
    first = await notifier.notify("p-coord", {"template": "step_assigned", "text": "Tienes una tarea: PRE-01"})
    second = await notifier.notify("p-dir", {"template": "review"})
    assert first["id"] != second["id"]
    lines = (tmp_path / "notificaciones.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["person_id"] for line in lines] == ["p-coord", "p-dir"]
    assert json.loads(lines[0])["message"]["text"] == "Tienes una tarea: PRE-01"
    with pytest.raises(Unreachable):
        await notifier.notify("p-nuevo", {"template": "review"})
    assert len(notifier.entries()) == 2


def test_fixed_clock_reads_naive_times_as_lima_and_advances():
    clock = FixedClock(datetime(2026, 12, 7, 9, 0))
    assert clock.now() == datetime(2026, 12, 7, 9, 0, tzinfo=LIMA)
    assert clock.now().utcoffset() == timedelta(hours=-5)
    assert clock.advance(days=1, hours=2) == datetime(2026, 12, 8, 11, 0, tzinfo=LIMA)
    assert clock.now() == datetime(2026, 12, 8, 11, 0, tzinfo=LIMA)
