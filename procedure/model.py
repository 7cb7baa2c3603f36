"""The shapes the procedure is written in: phases, steps, routes, decisions, deliverables, outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Phase(str, Enum):
    PRE = "PRE"
    PRO = "PRO"
    POS = "POS"
    TER = "TER"  # section 7.4: pieces an area had produced by its own contractor

    @property
    def label(self) -> str:
        return {
            Phase.PRE: "Preproducción",
            Phase.PRO: "Producción",
            Phase.POS: "Postproducción",
            Phase.TER: "Piezas elaboradas por terceros (7.4)",
        }[self]


class StepKind(str, Enum):
    TASK = "task"  # someone does the work and marks it done
    MEETING = "meeting"  # "Convocar/Presentar": done by proposing a review meeting or sending the material
    REVIEW = "review"  # "Revisar… ¿Es conforme?": conformity or adjustments
    CONFORMITY = "conformity"  # "Dar conformidad": recorded together with its review (DOMAIN.md, res. 7)


class Deliverable(str, Enum):
    """What a step hands over: a link or an uploaded file (or text, for the archive path)."""

    SCRIPT = "script"
    STORYBOARD = "storyboard"
    REFERENCES = "references"
    INFO_INPUTS = "info_inputs"
    PRELIMINARY_VERSION = "preliminary_version"
    FIRST_VERSION = "first_version"
    FINAL_VERSION = "final_version"
    GRAPHIC_PIECES = "graphic_pieces"
    SCHEDULE = "schedule"
    ARCHIVE_PATH = "archive_path"
    DISTRIBUTION_CHANNELS = "distribution_channels"

    @property
    def label(self) -> str:
        return DELIVERABLE_LABELS[self]


DELIVERABLE_LABELS: dict[Deliverable, str] = {
    Deliverable.SCRIPT: "Guion",
    Deliverable.STORYBOARD: "Storyboard",
    Deliverable.REFERENCES: "Referencias de videos existentes y material disponible",
    Deliverable.INFO_INPUTS: "Insumos informativos y/o comunicacionales",
    Deliverable.PRELIMINARY_VERSION: "Versión preliminar del video",
    Deliverable.FIRST_VERSION: "Primera versión del video",
    Deliverable.FINAL_VERSION: "Versión final del video",
    Deliverable.GRAPHIC_PIECES: "Piezas gráficas",
    Deliverable.SCHEDULE: "Cronograma de actividades",
    Deliverable.ARCHIVE_PATH: "Ruta del archivo (pieza y editables)",
    Deliverable.DISTRIBUTION_CHANNELS: "Canales de difusión",
}


class OutputKind(str, Enum):
    EMAIL = "email"  # "Correo electrónico"
    MEETING = "meeting"  # "Correo electrónico (agenda)": an invitation with a Teams link (res. 14)
    DOCUMENT = "document"  # a deliverable (script, storyboard, version…)
    AGENDA = "agenda"  # "Cuaderno / Agenda física o virtual / Cuadro en Excel"
    ARCHIVE = "archive"  # "Archivo en carpetas"
    DISTRIBUTION = "distribution"  # "Piezas audiovisuales difundidas"


@dataclass(frozen=True)
class Guard:
    """A condition on the request that selects a route; `field` names a request attribute."""

    field: str
    equals: object

    def describe(self) -> str:
        return GUARD_LABELS.get((self.field, self.equals), f"{self.field} = {self.equals}")


# Request attributes a route may test, with every value each can take (the validator checks
# that a decision covers them all or has a default route).
GUARD_DOMAINS: dict[str, frozenset[object]] = {
    "piece_type": frozenset({"A", "B"}),
    "investment_project": frozenset({True, False}),
    "outside_producer": frozenset({True, False}),
    "needs_animation": frozenset({True, False}),
    "needs_filming": frozenset({True, False}),
    "verdict": frozenset({"approved", "changes"}),
}

# How each branch reads in the flowchart, in the procedure's words.
GUARD_LABELS: dict[tuple[str, object], str] = {
    ("piece_type", "A"): "Tipo A: videos animados",
    ("piece_type", "B"): "Tipo B: videos con y sin grabación de tomas",
    ("investment_project", True): "Sí, proyecto APP o PA",
    ("investment_project", False): "No",
    ("outside_producer", True): "Requiere productora",
    ("outside_producer", False): "Sin productora",
    ("needs_animation", True): "Servicio de animación",
    ("needs_filming", True): "Servicio de grabación",
    ("verdict", "approved"): "Sí, es conforme",
    ("verdict", "changes"): "No, ajustes",
}


@dataclass(frozen=True)
class Route:
    to: str  # a step id, or END
    when: Guard | None = None  # None: the default route, taken when no guarded one applies


@dataclass(frozen=True)
class Output:
    kind: OutputKind
    label: str  # the procedure's "Salidas/Producto", verbatim
    to: tuple[str, ...]  # Role or Audience names: the procedure's "Usuario/Cliente"


@dataclass(frozen=True)
class Step:
    id: str  # PRE-01 … POS-08
    name: str  # the procedure's own words
    phase: Phase
    kind: StepKind
    roles: tuple[str, ...]  # who does it; the first is who it is assigned to by default
    output: Output
    routes: tuple[Route, ...] = ()
    description: str = ""
    # Who takes it instead when the piece is for the entity's own staff (res. 2).
    internal_audience_role: str | None = None
    deliverables: tuple[Deliverable, ...] = ()
    # "all": every deliverable is required; "any": at least one ("guion y/o storyboard").
    deliverable_rule: str = "all"
    # For a REVIEW: who may add observations without deciding (res. 9).
    observers: tuple[str, ...] = ()
    decision: str | None = None  # the question the step decides, as the procedure asks it

    @property
    def number(self) -> str:
        return self.id.split("-")[1]

    def route_for(self, verdict: str) -> str:
        """For a REVIEW: the step a verdict ("approved" or "changes") leads to."""
        return next(r.to for r in self.routes if r.when == Guard("verdict", verdict))

    @property
    def conformity_step(self) -> str:
        return self.route_for("approved")

    @property
    def adjust_step(self) -> str:
        return self.route_for("changes")


END = "END"
START = "START"


@dataclass(frozen=True)
class Procedure:
    """The whole procedure: its steps in order, where a request starts, and its other entry points."""

    steps: tuple[Step, ...]
    start: str
    # Other ways in: a request can start at one of these instead (7.4's review of third-party pieces).
    entries: tuple[str, ...] = ()
    by_id: dict[str, Step] = field(init=False, repr=False, compare=False)

    @property
    def starts(self) -> tuple[str, ...]:
        return (self.start, *self.entries)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {s.id: s for s in self.steps})

    def __getitem__(self, step_id: str) -> Step:
        return self.by_id[step_id]

    def __contains__(self, step_id: object) -> bool:
        return step_id in self.by_id

    @property
    def reviews(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind is StepKind.REVIEW)

    def successors(self, step_id: str) -> list[str]:
        """Every step a route of `step_id` can lead to, whatever the request says."""
        step = self.by_id.get(step_id)
        return [r.to for r in step.routes] if step else []
