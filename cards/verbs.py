"""The one registry of Action.Execute verbs and card input ids, and CardData: the payload every request card carries.

How a click reaches the bot
---------------------------
Every button that acts on a request is an ``Action.Execute`` with a ``verb`` from :class:`Verb` and
``data`` built by :meth:`CardData.data`. Teams sends it as an ``adaptiveCard/action`` invoke whose
``value.action`` is ``{"verb": ..., "data": {...}}``; the card's input values are merged into ``data``
under their input ids (the constants of :class:`Inputs`). Each Execute also carries an
``Action.Submit`` fallback (for clients without Universal Actions) whose ``data`` is the same
dictionary plus ``"verb"``; that arrives as a message activity whose ``value`` is that dictionary
with the inputs merged in. Either way ``bot/`` does::

    card = CardData.parse(data)          # number, version, step (raises ValueError when malformed)
    note = Inputs.get(data, Inputs.COMPLETE_NOTE)

Multi-select choice sets send their values joined by commas: read them with :func:`split_choices`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Mapping

from microsoft_teams.cards import ExecuteAction, SubmitAction
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Verb(str, Enum):
    """Every Action.Execute verb a card can send; ``bot/`` registers one handler per member."""

    INTAKE_SUBMIT = "intake.submit"  # the filled intake form (no CardData: the request does not exist yet)
    THIRD_PARTY_SUBMIT = "intake.third_party"  # 7.4: a piece made by the area's contractor, for OCOIM's review
    STEP_COMPLETE = "step.complete"  # Action.COMPLETE, with deliverables / classification / meeting
    REVIEW_APPROVE = "review.approve"  # Action.APPROVE: "Dar conformidad"
    REVIEW_CHANGES = "review.changes"  # Action.REQUEST_CHANGES: "Solicitar ajustes" (observation required)
    REVIEW_OBSERVE = "review.observe"  # Action.OBSERVE: a reviewer's observation, no decision
    REQUEST_REASSIGN = "request.reassign"
    REQUEST_HOLD = "request.hold"
    REQUEST_RESUME = "request.resume"
    REQUEST_CANCEL = "request.cancel"
    REQUEST_EDIT = "request.edit"  # Action.EDIT: correct due date, purpose, inputs, links (never the title)
    REQUEST_REFRESH = "request.refresh"  # the card's refresh action: answer with this viewer's card
    REQUEST_SHOW = "request.show"  # open a request's current card (from a list or the agenda)
    REQUEST_HISTORY = "request.history"  # the request's history card
    MEETING_SLOTS = "meeting.slots"  # "Ver horarios libres": free slots around Inputs.MEETING_DATE
    REMINDER_SNOOZE = "reminder.snooze"  # postpone a reminder (Inputs.SNOOZE_DAYS)
    AGENDA_FILTER = "agenda.filter"  # re-render the agenda with Inputs.FILTER_*
    AGENDA_EXPORT = "agenda.export"  # the tracking table as an Excel file
    BRAND_REPORT = "brand.report"  # 7.4: a piece that breaks the brand guidelines, to the coordinator
    FILE_ATTACH = "file.attach"  # a file shared in the chat, offered as a pending step's deliverable


class Inputs:
    """Input ids used by the cards (ids are unique within a card, ShowCards included).

    Values arrive as strings: dates ``yyyy-mm-dd``, times ``HH:MM``, toggles ``"true"``/``"false"``,
    multi-selects comma-joined (see :func:`split_choices`).
    """

    # intake.submit
    TITLE = "title"
    AREA = "area"
    DUE_DATE = "due_date"
    EXPECTED_TYPE = "expected_type"  # "A", "B" or EXPECTED_TYPE_UNKNOWN
    PURPOSE = "purpose"
    INPUTS = "inputs"  # "Insumos informativos"
    LINKS = "links"  # one URL per line
    INVOLVED_AREAS = "involved_areas"  # multi-select of area codes
    PIECE_URL = "piece_url"  # intake.third_party
    PRODUCER = "producer"

    # step.complete
    DELIVERABLE_PREFIX = "deliverable."  # + Deliverable.value, e.g. "deliverable.script": a link or text
    ATTACHED_PREFIX = "attached."  # + Deliverable.value: {name, url, source} of a file shared in the chat
    COMPLETE_NOTE = "complete.note"  # optional comment → Command.observation
    PIECE_TYPE = "class.piece_type"  # PieceType value
    TOPIC = "class.topic"  # Topic value
    INVESTMENT_PROJECT = "class.investment_project"  # toggle: APP / PA
    PROJECT_NAME = "class.project_name"
    AUDIENCE = "class.audience"  # Audience value
    SERVICES = "class.services"  # multi-select of Service values
    OUTSIDE_PRODUCER = "class.outside_producer"  # toggle
    PRODUCTION_DEADLINE = "production_deadline"  # PRO-01
    CONTRACT_REF = "contract_ref"  # PRE-17
    CHANNELS = "channels"  # POS-08: multi-select of DISTRIBUTION_CHANNELS keys
    MEETING_DATE = "meeting.date"
    MEETING_TIME = "meeting.time"
    MEETING_MINUTES = "meeting.minutes"  # "30", "60", "90", "120"
    MEETING_NOTES = "meeting.notes"

    # review.*
    APPROVE_COMMENT = "approve.comment"  # optional, with review.approve
    CHANGES_OBSERVATION = "changes.observation"  # required, with review.changes
    OBSERVE_OBSERVATION = "observe.observation"  # required, with review.observe

    # request.*
    REASSIGN_PERSON = "reassign.person"  # a person id from the card's `people`
    REASSIGN_REASON = "reassign.reason"
    HOLD_REASON = "hold.reason"  # required
    RESUME_REASON = "resume.reason"
    CANCEL_REASON = "cancel.reason"  # required
    EDIT_DUE_DATE = "edit.due_date"
    EDIT_PURPOSE = "edit.purpose"
    EDIT_INPUTS = "edit.inputs"
    EDIT_LINKS = "edit.links"  # one URL per line

    # reminder.snooze / agenda.filter
    SNOOZE_DAYS = "snooze.days"
    FILTER_AREA = "filter.area"
    FILTER_TYPE = "filter.type"
    FILTER_OWNER = "filter.owner"

    # brand.report
    BRAND_PIECE = "brand.piece"
    BRAND_DETAIL = "brand.detail"

    @staticmethod
    def deliverable(kind: Any) -> str:
        return Inputs.DELIVERABLE_PREFIX + getattr(kind, "value", str(kind))

    @staticmethod
    def get(data: Mapping[str, Any] | None, input_id: str) -> str:
        """An input's value as a stripped string ("" when absent)."""
        value = (data or {}).get(input_id)
        return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


EXPECTED_TYPE_UNKNOWN = "unknown"

# Option values a button may carry when several buttons share a verb (CardData.option).
OPTION_MEETING = "meeting"  # PRE-13 / PRO-10: present in a meeting (meeting inputs are used)
OPTION_EMAIL = "email"  # PRE-13 / PRO-10: send the material by email, no meeting

# POS-08 "según lo acordado": where the final version is delivered or distributed.
DISTRIBUTION_CHANNELS: dict[str, str] = {
    "social": "Redes sociales",
    "intranet": "Intranet",
    "portal": "Portal institucional",
    "internal_social": "Red social interna",
    "email": "Correo institucional",
    "area": "Entrega al área usuaria",
}

MEETING_MINUTES = (30, 60, 90, 120)


def split_choices(value: Any) -> list[str]:
    """The values of a multi-select choice set (sent comma-joined), without blanks or repeats."""
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value]
    else:
        parts = str(value or "").split(",")
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


class CardData(BaseModel):
    """What a request card's buttons carry: which request, at which version, built for which step.

    The same class builds the button (:meth:`execute`) and parses the click (:meth:`parse`), so the
    two can never disagree about field names.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    number: str = Field(min_length=1, max_length=40)
    version: int = Field(ge=1)
    step: str | None = Field(default=None, max_length=20)  # the step id the card was built for
    option: str | None = Field(default=None, max_length=20)  # which of several same-verb buttons

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def execute(self, verb: Verb, title: str, *, style: str | None = None,
                option: str | None = None, fallback: bool = True) -> ExecuteAction:
        """An Action.Execute for `verb` carrying this data (and an Action.Submit fallback)."""
        card = self.model_copy(update={"option": option}) if option else self
        return execute_action(verb, title, card.data(), style=style, fallback=fallback)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> "CardData":
        """CardData from a click's data (input values merged in are ignored); ValueError when malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("la acción no trae datos de la tarjeta")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ValueError(f"datos de tarjeta no válidos: {exc.errors(include_url=False)}") from exc


def execute_action(verb: Verb, title: str, data: dict[str, Any] | None = None, *, style: str | None = None,
                   fallback: bool = True) -> ExecuteAction:
    """An Action.Execute; its fallback is an Action.Submit with the same data plus ``"verb"``."""
    payload = dict(data or {})
    action = ExecuteAction(verb=verb.value, title=title, data=payload, style=style)
    if fallback:
        action.fallback = SubmitAction(title=title, data={**payload, "verb": verb.value}, style=style)
    return action
