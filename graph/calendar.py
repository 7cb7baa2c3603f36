"""Meetings through Microsoft Graph: Teams meetings in the office's calendar, and free times from getSchedule."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from msgraph import GraphServiceClient
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.online_meeting_provider_type import OnlineMeetingProviderType
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import GetSchedulePostRequestBody

from local.calendar import MAX_SLOTS, SLOT_STEP, WORKING_BLOCKS
from local.clock import LIMA, SystemClock, in_lima
from procedure.calendar import is_working_day
from services.ports import Clock, MeetingRequest

# Graph's calendar takes Windows zone names (and a short list of IANA ones that does not include
# America/Lima); "SA Pacific Standard Time" is Lima's (UTC-5, no daylight saving).
LIMA_WINDOWS_ZONE = "SA Pacific Standard Time"
INTERVAL_MINUTES = 30


class GraphCalendar:
    """Calendar port on the organiser's mailbox (the office's)."""

    def __init__(self, client: GraphServiceClient, organiser_mailbox: str, *, clock: Clock | None = None,
                 time_zone: str = LIMA_WINDOWS_ZONE) -> None:
        self.client = client
        self.organiser = organiser_mailbox
        self.clock = clock or SystemClock()
        self.time_zone = time_zone

    async def create_meeting(self, meeting: MeetingRequest) -> dict:
        """The same transaction_id returns the first event (Graph's transactionId), so retries never duplicate it."""
        if meeting.minutes <= 0:
            raise ValueError("La reunión debe durar al menos un minuto.")
        start = in_lima(meeting.start)
        event = Event(
            subject=meeting.subject,
            body=ItemBody(content_type=BodyType.Html, content=meeting.body_html),
            start=self._local(start),
            end=self._local(start + timedelta(minutes=meeting.minutes)),
            attendees=[Attendee(email_address=EmailAddress(address=a), type=AttendeeType.Required)
                       for a in dict.fromkeys(meeting.attendees)],
            is_online_meeting=True,
            online_meeting_provider=OnlineMeetingProviderType.TeamsForBusiness,
            transaction_id=meeting.transaction_id,
        )
        created = await self.client.users.by_user_id(self.organiser).events.post(event)
        join_url = created.online_meeting.join_url if created.online_meeting else ""
        return {"id": created.id, "join_url": join_url or "", "web_link": created.web_link or ""}

    def _local(self, moment: datetime) -> DateTimeTimeZone:
        return DateTimeTimeZone(date_time=moment.replace(tzinfo=None).isoformat(timespec="seconds"),
                                time_zone=self.time_zone)

    async def free_slots(self, attendees: tuple[str, ...], day: date, minutes: int) -> list[datetime]:
        """Up to five starts in office hours on a working day when the office and every attendee are free."""
        if minutes <= 0 or not is_working_day(day):
            return []
        day_start = datetime.combine(day, WORKING_BLOCKS[0][0], LIMA)
        day_end = datetime.combine(day, WORKING_BLOCKS[-1][1], LIMA)
        # The window goes in UTC: every Graph zone spelling agrees on it, and availabilityView is
        # relative to the window's start whatever the zone.
        body = GetSchedulePostRequestBody(
            schedules=list(dict.fromkeys((self.organiser, *attendees))),
            availability_view_interval=INTERVAL_MINUTES,
            start_time=_utc(day_start), end_time=_utc(day_end))
        answer = await self.client.users.by_user_id(self.organiser).calendar.get_schedule.post(body)
        slots = int((day_end - day_start) / timedelta(minutes=INTERVAL_MINUTES))
        free = [True] * slots
        for schedule in answer.value or []:
            if schedule.error is not None:  # an unknown address: we cannot know, so do not offer over it
                continue
            view = schedule.availability_view or ""
            for i in range(slots):
                free[i] = free[i] and (i < len(view) and view[i] == "0")
        now = self.clock.now()
        length = timedelta(minutes=minutes)
        starts: list[datetime] = []
        for opens, closes in WORKING_BLOCKS:
            start, block_end = datetime.combine(day, opens, LIMA), datetime.combine(day, closes, LIMA)
            while start + length <= block_end and len(starts) < MAX_SLOTS:
                first = int((start - day_start) / timedelta(minutes=INTERVAL_MINUTES))
                last = int((start + length - day_start - timedelta(seconds=1)) / timedelta(minutes=INTERVAL_MINUTES))
                if start >= now and all(free[first:last + 1]):
                    starts.append(start)
                start += SLOT_STEP
        return starts


def _utc(moment: datetime) -> DateTimeTimeZone:
    return DateTimeTimeZone(date_time=moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds"),
                            time_zone="UTC")
