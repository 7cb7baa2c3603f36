"""The SharePoint lists Claqueta keeps its state in: names, columns and indexes, used by the store and by provisioning."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from msgraph.generated.models.boolean_column import BooleanColumn
from msgraph.generated.models.column_definition import ColumnDefinition
from msgraph.generated.models.number_column import NumberColumn
from msgraph.generated.models.text_column import TextColumn

from procedure.roles import Role

Kind = Literal["text", "note", "number", "boolean"]

# SharePoint limits the stores respect (the store checks them before writing, FakeGraph enforces them).
SINGLE_LINE_MAX = 255
MULTI_LINE_MAX = 63_999
MAX_INDEXES = 20


@dataclass(frozen=True)
class ColumnSpec:
    """One column: `name` is the internal name the code filters on; `display` is what people see (Spanish)."""

    name: str
    display: str
    kind: Kind = "text"
    indexed: bool = False

    def definition(self) -> ColumnDefinition:
        column = ColumnDefinition(name=self.name, display_name=self.display, indexed=self.indexed or None)
        if self.kind == "text":
            column.text = TextColumn(max_length=SINGLE_LINE_MAX)
        elif self.kind == "note":
            column.text = TextColumn(allow_multiple_lines=True, lines_for_editing=6)
        elif self.kind == "number":
            column.number = NumberColumn()
        else:
            column.boolean = BooleanColumn()
        return column


@dataclass(frozen=True)
class ListSpec:
    key: str  # attribute of ListIds
    display: str  # the list's name on the site
    description: str
    columns: tuple[ColumnSpec, ...]
    indexed_title: bool = False

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


# Who a request names for each role it can be reassigned to: one indexed column per role, so "my
# requests" is an indexed equality filter per column (SharePoint has no indexed "contains").
ASSIGNEE_COLUMNS: dict[str, str] = {
    Role.COORDINATOR.value: "AsignadoCoordinacion",
    Role.PRESS.value: "AsignadoPrensa",
    Role.COMMS.value: "AsignadoComunicacion",
    Role.DESIGNER.value: "AsignadoDiseno",
    Role.OCOIM_HEAD.value: "AsignadoJefatura",
    Role.ADMIN_ANALYST.value: "AsignadoAnalista",
    Role.REQUESTER.value: "AsignadoSolicitante",
}
ASSIGNEE_DISPLAY = {
    "AsignadoCoordinacion": "Asignado: Coordinación", "AsignadoPrensa": "Asignado: Prensa",
    "AsignadoComunicacion": "Asignado: Comunicación", "AsignadoDiseno": "Asignado: Diseño",
    "AsignadoJefatura": "Asignado: Jefatura OCOIM", "AsignadoAnalista": "Asignado: Analista administrativo",
    "AsignadoSolicitante": "Asignado: Área usuaria",
}
# The request's JSON is split over these multi-line columns when it outgrows one (63,999 characters each).
REQUEST_DATA_COLUMNS = ("Datos", "Datos2", "Datos3")

REQUESTS = ListSpec("requests", "Solicitudes", "Solicitudes de piezas audiovisuales (una por solicitud)", (
    ColumnSpec("Numero", "Número", indexed=True),
    ColumnSpec("Estado", "Estado", indexed=True),
    ColumnSpec("Paso", "Paso", indexed=True),
    ColumnSpec("Area", "Área", indexed=True),
    ColumnSpec("Solicitante", "Solicitante", indexed=True),
    ColumnSpec("Vence", "Fecha requerida", indexed=True),
    ColumnSpec("Version", "Versión", "number", indexed=True),
    ColumnSpec("TieneEfectos", "Tiene pendientes", "boolean", indexed=True),
    *(ColumnSpec(name, ASSIGNEE_DISPLAY[name], indexed=True) for name in ASSIGNEE_COLUMNS.values()),
    ColumnSpec("Datos", "Datos (JSON)", "note"),
    ColumnSpec("Datos2", "Datos (JSON, continuación)", "note"),
    ColumnSpec("Datos3", "Datos (JSON, continuación 2)", "note"),
    ColumnSpec("Pendientes", "Pendientes (JSON)", "note"),
))
HISTORY = ListSpec("history", "Historial", "Historial de cada solicitud (una fila por acción)", (
    ColumnSpec("Numero", "Número", indexed=True),
    ColumnSpec("Clave", "Clave", indexed=True),  # number/version/seq: the entry's identity
    ColumnSpec("Version", "Versión", "number"),
    ColumnSpec("Secuencia", "Secuencia", "number"),
    ColumnSpec("Paso", "Paso"),
    ColumnSpec("Accion", "Acción"),
    ColumnSpec("Actor", "Responsable"),
    ColumnSpec("Resumen", "Resumen", "note"),
    ColumnSpec("Datos", "Datos (JSON)", "note"),
))
EFFECTS = ListSpec("effects", "Efectos", "Envíos pendientes y realizados (notificaciones, correos, reuniones, archivos)", (
    ColumnSpec("EfectoId", "Identificador", indexed=True),
    ColumnSpec("Solicitud", "Solicitud", indexed=True),
    ColumnSpec("Estado", "Estado", indexed=True),
    ColumnSpec("ProximoIntento", "Próximo intento (epoch)", "number", indexed=True),
    ColumnSpec("Orden", "Orden", indexed=True),
    ColumnSpec("Tipo", "Tipo"),
    ColumnSpec("Intentos", "Intentos", "number"),
    ColumnSpec("Arriendo", "En curso hasta (epoch)", "number"),
    ColumnSpec("ArrendadoPor", "Tomado por"),
    ColumnSpec("Datos", "Datos (JSON)", "note"),
))
COUNTERS = ListSpec("counters", "Contadores", "Último número de solicitud por año", (
    ColumnSpec("Anio", "Año", indexed=True),
    ColumnSpec("Ultimo", "Último número", "number"),
    ColumnSpec("UltimoPor", "Tomado por"),
))
REFERENCES = ListSpec("references", "ReferenciasConversacion", "Referencias de conversación de Teams por persona", (
    ColumnSpec("Persona", "Persona", indexed=True),
    ColumnSpec("Datos", "Referencia (JSON)", "note"),
))
LISTS: tuple[ListSpec, ...] = (REQUESTS, HISTORY, EFFECTS, COUNTERS, REFERENCES)

assert all(sum(c.indexed for c in spec.columns) <= MAX_INDEXES for spec in LISTS)


@dataclass(frozen=True)
class ListIds:
    """The id (or display name: Graph takes either in the URL) of each list the store uses."""

    requests: str = REQUESTS.display
    history: str = HISTORY.display
    effects: str = EFFECTS.display
    counters: str = COUNTERS.display
    references: str = REFERENCES.display

    @classmethod
    def names(cls) -> "ListIds":
        return cls()

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
