"""A request for an audiovisual piece: what the area files (section 6), what PRE-01 decides, and where it stands."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from procedure.model import END, Deliverable


class PieceType(str, Enum):
    A = "A"  # Videos animados
    B = "B"  # Videos con o sin grabación de tomas

    @property
    def label(self) -> str:
        return {"A": "Tipo A: video animado", "B": "Tipo B: video con o sin grabación de tomas"}[self.value]


class Topic(str, Enum):
    INSTITUTIONAL = "institutional"
    PROMOTIONAL = "promotional"
    SOCIAL = "social"

    @property
    def label(self) -> str:
        return {"institutional": "Institucional", "promotional": "Promocional", "social": "Social"}[self.value]


class Audience(str, Enum):
    EXTERNAL = "external"
    INTERNAL = "internal"

    @property
    def label(self) -> str:
        return {"external": "Externo", "internal": "Interno (colaboradores de la entidad)"}[self.value]


class Service(str, Enum):
    ANIMATION = "animation"
    FILMING = "filming"
    EDITING = "editing"

    @property
    def label(self) -> str:
        return {"animation": "Animación", "filming": "Grabación", "editing": "Edición"}[self.value]


class Status(str, Enum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"
    DELIVERED = "delivered"

    @property
    def label(self) -> str:
        return {"active": "En curso", "on_hold": "En espera", "cancelled": "Cancelada",
                "delivered": "Entregada"}[self.value]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Link(Frozen):
    url: str
    label: str = ""


class Classification(Frozen):
    """What PRE-01 decides about the piece."""

    piece_type: PieceType
    topic: Topic
    investment_project: bool = False  # APP or PA
    project_name: str = ""
    audience: Audience = Audience.EXTERNAL
    services: frozenset[Service] = frozenset({Service.EDITING})
    outside_producer: bool = False


class DeliverableRecord(Frozen):
    kind: Deliverable
    ref: str  # a link, the id of an uploaded file, or text (archive path, channels)
    name: str = ""
    uploaded: bool = False  # a file shared in the chat, to be copied to the document library
    source: str = ""  # for an upload: where to download it from
    step_id: str
    round: int = 1
    by: str
    at: datetime


class Observation(Frozen):
    step_id: str
    round: int
    by: str
    by_name: str
    text: str
    at: datetime
    decisive: bool = True  # False: a reviewer's comment; True: the observation behind "Solicitar ajustes"


class Request(Frozen):
    number: str
    version: int = 1
    title: str
    area: str
    due_date: date
    purpose: str = ""
    inputs: str = ""
    links: tuple[Link, ...] = ()
    involved_areas: tuple[str, ...] = ()
    expected_type: PieceType | None = None  # the requester's guess at intake, for the lead-time warning
    entry: str = "PRE-01"  # where it started: PRE-01, or TER-01 for a piece made by a third party (7.4)
    producer: str = ""  # 7.4: the contractor who made the piece
    requester_id: str
    requester_name: str = ""
    filed_at: datetime

    classification: Classification | None = None
    status: Status = Status.ACTIVE
    step_id: str
    step_opened_at: datetime
    # The person in charge for each role on this request (set by the coordinator's reassignment).
    assignees: dict[str, str] = Field(default_factory=dict)
    deliverables: tuple[DeliverableRecord, ...] = ()
    review_rounds: dict[str, int] = Field(default_factory=dict)
    observations: tuple[Observation, ...] = ()
    production_deadline: date | None = None
    contract_ref: str = ""
    archive_path: str = ""
    distribution_channels: tuple[str, ...] = ()
    status_reason: str = ""
    delivered_at: datetime | None = None
    last_actor_name: str = ""
    last_action_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in (Status.ACTIVE, Status.ON_HOLD)

    @property
    def third_party(self) -> bool:
        return self.entry.startswith("TER-")

    @property
    def status_label(self) -> str:
        """In Spanish; a third party's piece is not delivered by OCOIM but given its conformity."""
        if self.third_party and self.status is Status.DELIVERED:
            return "Con conformidad de OCOIM"
        return self.status.label

    @property
    def finished(self) -> bool:
        return self.step_id == END

    def rounds(self, review_step: str) -> int:
        return self.review_rounds.get(review_step, 0)

    def guard_value(self, field: str) -> object:
        c = self.classification
        if c is None:
            return None
        return {
            "piece_type": c.piece_type.value,
            "investment_project": c.investment_project,
            "outside_producer": c.outside_producer,
            "needs_animation": Service.ANIMATION in c.services,
            "needs_filming": Service.FILMING in c.services,
        }.get(field)

    def latest(self, kind: Deliverable) -> DeliverableRecord | None:
        for record in reversed(self.deliverables):
            if record.kind is kind:
                return record
        return None

    def observations_for(self, review_step: str) -> list[Observation]:
        return [o for o in self.observations if o.step_id == review_step]


class HistoryEntry(Frozen):
    """One line of the audit trail: who did what, on which step, when, and on which version."""

    request_number: str
    version: int  # the request's version after this entry
    seq: int  # order within the transition (a conformity writes two entries)
    step_id: str
    action: str
    summary: str  # a Spanish sentence an auditor reads
    actor_id: str
    actor_name: str
    at: datetime
    round: int | None = None
    observation: str = ""
    detail: dict = Field(default_factory=dict)


class EffectKind(str, Enum):
    NOTIFY = "notify"  # a card or message in Teams
    EMAIL = "email"  # "Correo electrónico"
    MEETING = "meeting"  # "Correo electrónico (agenda)": an invitation with a Teams link
    UPLOAD = "upload"  # copy a file shared in the chat to the document library
    ARCHIVE = "archive"  # POS-07: final piece and editables to Archivo/<año>/<mes>/<título>/


class Effect(Frozen):
    """Work a transition implies outside the store, delivered after the reply; `id` makes it idempotent."""

    id: str
    kind: EffectKind
    request_number: str
    payload: dict = Field(default_factory=dict)
