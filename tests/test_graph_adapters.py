"""The Graph adapters for mail, calendar, files and directory, through the real SDK client against FakeGraph."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from graph.calendar import LIMA_WINDOWS_ZONE, GraphCalendar
from graph.directory import GraphDirectory
from graph.files import CHUNK_UNIT, GraphFileStore
from graph.mail import EFFECT_HEADER, GraphMailer
from local.clock import LIMA
from services.ports import Email, MeetingRequest
from tests.graph_fixtures import fake_graph, graph_calls, graph_client, graph_settings  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MAILBOX = "audiovisual@proinversion.gob.pe"


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


async def test_a_mail_goes_from_the_office_mailbox_as_html_with_the_effect_id(fake_graph, graph_client):
    mailer = GraphMailer(graph_client, MAILBOX)
    await mailer.send(Email(to=("rosa@proinversion.gob.pe",), cc=("dora@proinversion.gob.pe",),
                            subject="Solicitud 2026-0001: guion listo para revisión", html="<p>Hola</p>",
                            idempotency_key="2026-0001/v3/0-email"))
    [sent] = fake_graph.sent_mail
    message = sent["message"]
    assert sent["mailbox"] == MAILBOX
    assert message["subject"] == "Solicitud 2026-0001: guion listo para revisión"
    assert message["body"] == {"contentType": "html", "content": "<p>Hola</p>"}
    assert [r["emailAddress"]["address"] for r in message["toRecipients"]] == ["rosa@proinversion.gob.pe"]
    assert [r["emailAddress"]["address"] for r in message["ccRecipients"]] == ["dora@proinversion.gob.pe"]
    assert message["internetMessageHeaders"] == [{"name": EFFECT_HEADER, "value": "2026-0001/v3/0-email"}]


async def test_a_mail_without_recipients_is_refused_before_calling_graph(fake_graph, graph_client):
    with pytest.raises(ValueError):
        await GraphMailer(graph_client, MAILBOX).send(Email(to=(), subject="x", html="", idempotency_key="k"))
    assert fake_graph.calls == []


def meeting(transaction_id: str = "2026-0001/v5/0-meeting") -> MeetingRequest:
    return MeetingRequest(subject="Reunión de inicio: Video institucional", start=datetime(2026, 12, 9, 10, 0, tzinfo=LIMA),
                          minutes=60, attendees=("rosa@proinversion.gob.pe", "pedro@proinversion.gob.pe"),
                          body_html="<p>Agenda</p>", transaction_id=transaction_id)


async def test_a_meeting_is_a_teams_event_in_lima_time_and_the_same_transaction_makes_one_event(fake_graph, graph_client):
    calendar = GraphCalendar(graph_client, MAILBOX)
    first = await calendar.create_meeting(meeting())
    again = await calendar.create_meeting(meeting())

    [event] = fake_graph.events[MAILBOX]
    assert again["id"] == first["id"] == event["id"]
    assert first["join_url"].startswith("https://teams.microsoft.com/")
    assert event["transactionId"] == "2026-0001/v5/0-meeting"
    assert event["isOnlineMeeting"] is True and event["onlineMeetingProvider"] == "teamsForBusiness"
    assert event["start"] == {"dateTime": "2026-12-09T10:00:00", "timeZone": LIMA_WINDOWS_ZONE}
    assert event["end"] == {"dateTime": "2026-12-09T11:00:00", "timeZone": LIMA_WINDOWS_ZONE}
    assert [a["emailAddress"]["address"] for a in event["attendees"]] == list(meeting().attendees)


async def test_free_slots_avoid_what_anyone_has_booked_and_stay_in_office_hours(fake_graph, graph_client):
    # Pedro is busy 09:00–10:30 and 14:00–15:00 (Lima) in his own calendar.
    for start, end in (("09:00", "10:30"), ("14:00", "15:00")):
        fake_graph.events.setdefault("pedro@proinversion.gob.pe", []).append({
            "id": f"busy-{start}", "subject": "Ocupado", "showAs": "busy",
            "start": {"dateTime": f"2026-12-10T{start}:00", "timeZone": "America/Lima"},
            "end": {"dateTime": f"2026-12-10T{end}:00", "timeZone": "America/Lima"}})
    calendar = GraphCalendar(graph_client, MAILBOX, clock=FixedClock(datetime(2026, 12, 1, 8, 0, tzinfo=LIMA)))
    slots = await calendar.free_slots(("pedro@proinversion.gob.pe",), date(2026, 12, 10), 60)
    assert [s.strftime("%H:%M") for s in slots] == ["10:30", "11:00", "11:30", "12:00", "15:00"]
    assert all(s.tzinfo is not None for s in slots)
    assert await calendar.free_slots(("pedro@proinversion.gob.pe",), date(2026, 12, 12), 60) == []  # a Saturday


async def test_an_upload_resumes_after_a_failed_chunk_without_sending_a_token(fake_graph, graph_client):
    files = GraphFileStore(graph_client, fake_graph.drive_id, chunk_size=CHUNK_UNIT)
    content = bytes(range(256)) * (CHUNK_UNIT * 3 // 256) + b"fin"
    # The second chunk lands but its answer is lost (a 503 after the work): the uploader asks where to go on.
    original = fake_graph._upload_chunk
    calls = []

    def flaky(session, headers, body):
        calls.append(headers.get("content-range"))
        reply = original(session, headers, body)
        if len(calls) == 2:
            from tests.graph_server import Reply
            return Reply(503, {"error": {"code": "serviceNotAvailable", "message": "x"}})
        return reply

    fake_graph._upload_chunk = flaky
    result = await files.put("Solicitudes/2026-0001", "master.mp4", content)

    assert fake_graph.file_content("Solicitudes/2026-0001/master.mp4") == content
    assert len(calls) == 4  # 3 full chunks and the tail, the lost answer not sent again
    assert result["url"].startswith("https://fake.sharepoint.com/")
    uploads = [c for c in fake_graph.calls if c.route == "upload"]
    assert uploads and all("authorization" not in c.headers for c in uploads)


async def test_archive_puts_links_in_the_dated_folder_and_shares_it(fake_graph, graph_client):
    files = GraphFileStore(graph_client, fake_graph.drive_id)
    result = await files.archive(["https://www.youtube.com/watch?v=abc"], "Archivo/2026/12/Video institucional/")
    assert result["path"] == "Archivo/2026/12/Video institucional"
    [name] = result["files"]
    assert b"URL=https://www.youtube.com/watch?v=abc" in fake_graph.file_content(f"{result['path']}/{name}")
    again = await files.archive(["https://www.youtube.com/watch?v=abc"], "Archivo/2026/12/Video institucional/")
    assert again["files"] == [name]  # a retry replaces, it does not pile up copies
    assert result["url"]


async def test_directory_reads_roles_from_groups_and_keeps_them_for_a_few_minutes(fake_graph, graph_client, graph_calls):
    fake_graph.add_group("g-coord", [{"id": "c", "displayName": "Carla", "mail": "carla@proinversion.gob.pe"}])
    fake_graph.add_group("g-press", [{"id": "p", "displayName": "Pedro", "mail": "pedro@proinversion.gob.pe"},
                                     {"id": "c", "displayName": "Carla", "mail": "carla@proinversion.gob.pe"}])
    fake_graph.add_group("g-req", [{"id": f"u{i}", "displayName": f"Persona {i}", "mail": ""} for i in range(150)])
    clock = [0.0]
    directory = GraphDirectory(graph_client, {"COORDINATOR": "g-coord", "PRESS": "g-press", "REQUESTER": "g-req"},
                               {"DE": "c"}, {"DE": "Dirección Ejecutiva"}, cache_seconds=300,
                               monotonic=lambda: clock[0])

    carla = await directory.person("c")
    assert carla.name == "Carla" and carla.email == "carla@proinversion.gob.pe"
    assert carla.has("COORDINATOR") and carla.has("PRESS") and carla.has("DIRECTOR") and carla.directs == {"DE"}
    assert [p.id for p in await directory.people_with_role("OCOIM_TEAM")] == ["c", "p"]
    assert len(await directory.people_with_role("REQUESTER")) == 150  # paged through nextLink
    assert (await directory.director_of("DE")).id == "c"
    assert await directory.areas() == {"DE": "Dirección Ejecutiva"}
    calls = graph_calls.total

    fake_graph.add_group("g-press", [{"id": "p", "displayName": "Pedro", "mail": "pedro@proinversion.gob.pe"}])
    clock[0] = 299
    assert (await directory.person("c")).has("PRESS")  # still the cached view
    assert graph_calls.total == calls
    clock[0] = 301
    assert not (await directory.person("c")).has("PRESS")  # refreshed after five minutes
    assert graph_calls.total > calls
