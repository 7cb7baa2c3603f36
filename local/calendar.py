"""Meetings on the embedded default: each invitation written as an .ics file, once per transaction id."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path

from icalendar import Calendar as ICalendar
from icalendar import Event, vCalAddress, vText

from local.clock import LIMA, SystemClock, in_lima
from local.files import key_filename, write_atomically
from procedure.calendar import is_working_day
from services.ports import Clock, MeetingRequest

DEFAULT_ORGANIZER = "ocoim@proinversion.example"
ORGANIZER_NAME = "OCOIM — PROINVERSIÓN"
# Office hours in Lima, with the lunch break; meetings are proposed inside them only.
WORKING_BLOCKS = ((time(9, 0), time(13, 0)), (time(14, 0), time(18, 0)))
SLOT_STEP = timedelta(minutes=30)
MAX_SLOTS = 5


class IcsCalendar:
    """Calendar port on a folder of .ics files: each file is one event of the office's calendar."""

    def __init__(self, folder: str | Path, organizer: str = DEFAULT_ORGANIZER, *,
                 clock: Clock | None = None) -> None:
        self.folder = Path(folder)
        self.organizer = organizer
        self.clock = clock or SystemClock()

    async def create_meeting(self, meeting: MeetingRequest) -> dict:
        if meeting.minutes <= 0:
            raise ValueError("La reunión debe durar al menos un minuto.")
        path = self.folder / key_filename(meeting.transaction_id, ".ics")
        if path.exists():  # the same transaction never makes a second event
            event = _events_of(path)[0]
            return {"id": str(event["UID"]), "join_url": str(event.get("URL", "")), "path": str(path),
                    "duplicate": True}
        join_url = join_url_for(meeting.transaction_id)
        start = in_lima(meeting.start)
        calendar = ICalendar()
        calendar.add("prodid", "-//PROINVERSIÓN OCOIM//Claqueta//ES")
        calendar.add("version", "2.0")
        calendar.add("method", "REQUEST")
        event = Event()
        event.add("uid", meeting.transaction_id)
        event.add("dtstamp", self.clock.now())
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(minutes=meeting.minutes))
        event.add("summary", meeting.subject)
        event.add("description", _text_of(meeting.body_html))
        event.add("x-alt-desc", meeting.body_html, parameters={"FMTTYPE": "text/html"})
        event.add("location", vText(f"Reunión de Microsoft Teams: {join_url}"))
        event.add("url", join_url)
        event.add("x-microsoft-skypeteamsmeetingurl", join_url)
        event.add("sequence", 0)
        event.add("status", "CONFIRMED")
        organizer = vCalAddress(f"mailto:{self.organizer}")
        organizer.params["CN"] = vText(ORGANIZER_NAME)
        event.add("organizer", organizer)
        for address in dict.fromkeys(meeting.attendees):
            attendee = vCalAddress(f"mailto:{address}")
            attendee.params.update({"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"})
            event.add("attendee", attendee, encode=0)
        calendar.add_component(event)
        calendar.add_missing_timezones()  # the VTIMEZONE block that DTSTART;TZID=America/Lima refers to
        write_atomically(path, calendar.to_ical())
        return {"id": meeting.transaction_id, "join_url": join_url, "path": str(path)}

    async def free_slots(self, attendees: tuple[str, ...], day: date, minutes: int) -> list[datetime]:
        """Up to five start times on a working day, inside office hours, clear of every event in the folder.

        The folder is the office's own calendar and the office attends every meeting it schedules, so
        every event in it blocks the office, whoever else attends.
        """
        if minutes <= 0 or not is_working_day(day):
            return []
        busy = self._busy(day)
        now = self.clock.now()
        length = timedelta(minutes=minutes)
        slots: list[datetime] = []
        for opens, closes in WORKING_BLOCKS:
            start = datetime.combine(day, opens, LIMA)
            end_of_block = datetime.combine(day, closes, LIMA)
            while start + length <= end_of_block and len(slots) < MAX_SLOTS:
                end = start + length
                if start >= now and not any(start < b_end and end > b_start for b_start, b_end in busy):
                    slots.append(start)
                start += SLOT_STEP
        return slots

    def _busy(self, day: date) -> list[tuple[datetime, datetime]]:
        day_start = datetime.combine(day, time(0), LIMA)
        day_end = day_start + timedelta(days=1)
        busy = []
        for path in sorted(self.folder.glob("*.ics")) if self.folder.is_dir() else []:
            for event in _events_of(path):
                if str(event.get("STATUS", "")).upper() == "CANCELLED":
                    continue
                start = _as_datetime(event.decoded("DTSTART"))
                end = _as_datetime(event.decoded("DTEND")) if "DTEND" in event else start + event.decoded(
                    "DURATION", timedelta(0))
                if start < day_end and end > day_start:
                    busy.append((start, end))
        return busy


def join_url_for(transaction_id: str) -> str:
    """A Teams-shaped join link that goes nowhere: local mode has no tenant to host the meeting."""
    return f"https://teams.microsoft.com/l/meetup-join/local-{hashlib.sha256(transaction_id.encode()).hexdigest()[:24]}"


def _events_of(path: Path) -> list[Event]:
    return list(ICalendar.from_ical(path.read_bytes()).walk("VEVENT"))


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return in_lima(value)
    return datetime.combine(value, time(0), LIMA)  # an all-day event blocks the whole day


class _TextOf(HTMLParser):
    BREAKS = {"p", "br", "li", "tr", "div", "h1", "h2", "h3", "blockquote", "ul", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("• ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _text_of(html: str) -> str:
    """The plain-text DESCRIPTION for clients that do not read X-ALT-DESC."""
    parser = _TextOf()
    parser.feed(html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
