"""The procedure's roles and the other audiences its outputs go to, with their Spanish names."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    COORDINATOR = "COORDINATOR"
    PRESS = "PRESS"
    COMMS = "COMMS"
    OCOIM_TEAM = "OCOIM_TEAM"
    DESIGNER = "DESIGNER"
    OCOIM_HEAD = "OCOIM_HEAD"
    ADMIN_ANALYST = "ADMIN_ANALYST"
    DIRECTOR = "DIRECTOR"
    REQUESTER = "REQUESTER"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.COORDINATOR: "Coordinador(a) de Marketing e Imagen Institucional",
    Role.PRESS: "Especialista en Prensa y Medios / Periodista Económico",
    Role.COMMS: "Especialista en Comunicación y Publicidad",
    Role.OCOIM_TEAM: "Equipo de especialistas de OCOIM",
    Role.DESIGNER: "Diseñador(a) Gráfico (ilustrador)",
    Role.OCOIM_HEAD: "Jefe(a) de OCOIM",
    Role.ADMIN_ANALYST: "Analista Administrativo(a) de OCOIM",
    Role.DIRECTOR: "Director(a) / Jefe(a) del Área Usuaria",
    Role.REQUESTER: "Área Usuaria (solicitante)",
}

# The OCOIM team is not a separate job: it is the press and comms specialists together (5.4).
TEAM_MEMBERS: dict[Role, frozenset[Role]] = {
    Role.OCOIM_TEAM: frozenset({Role.PRESS, Role.COMMS}),
}

# Roles that belong to OCOIM and so see every request.
OCOIM_ROLES: frozenset[Role] = frozenset(
    {Role.COORDINATOR, Role.PRESS, Role.COMMS, Role.DESIGNER, Role.OCOIM_HEAD, Role.ADMIN_ANALYST}
)


class Audience(str, Enum):
    """Recipients of an output that are not a single role: the areas of the request."""

    REQUESTING_AREA = "REQUESTING_AREA"
    INVOLVED_AREAS = "INVOLVED_AREAS"

    @property
    def label(self) -> str:
        return {
            Audience.REQUESTING_AREA: "Área Usuaria",
            Audience.INVOLVED_AREAS: "Áreas involucradas",
        }[self]


def recipient_label(name: str) -> str:
    if name in Role.__members__:
        return Role(name).label
    return Audience(name).label
