"""The directory on the embedded default: areas, directors and people from a YAML file, plus local overrides."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from procedure.engine import Person
from procedure.roles import TEAM_MEMBERS, Role

log = logging.getLogger(__name__)

# Roles a person is given by name. OCOIM_TEAM is PRESS + COMMS together (5.4) and DIRECTOR follows from
# directing an area, so neither is a role one can hold on its own.
ASSIGNABLE_ROLES = tuple(r for r in Role if r not in TEAM_MEMBERS)


class DirectoryError(ValueError):
    """A directory change that cannot be made; the message says why, in Spanish."""


class DirectoryConfigError(DirectoryError):
    """The people file (or the overrides file) is malformed; the message names the file and the entry."""


# ── The file's format ──────────────────────────────────────────────────────────────────────────


class AreaEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    director: str | None = None


class PersonEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    email: str = ""
    area: str = ""
    roles: list[str] = []
    # Other ids Teams may send for the same person (the Teams user id "29:…", the Playground's "user-id-0").
    aliases: list[str] = []

    @field_validator("id", "name", "email", "area", mode="after")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("email", mode="after")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        if value and ("@" not in value or " " in value):
            raise ValueError(f"correo inválido «{value}»")
        return value

    @field_validator("roles", mode="after")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        for role in roles:
            if role == Role.OCOIM_TEAM.value:
                raise ValueError("el rol OCOIM_TEAM no se asigna: es el conjunto de PRESS y COMMS; "
                                 "asigna uno de ellos")
            if role not in Role.__members__:
                raise ValueError(f"rol desconocido «{role}»; roles válidos: {_role_names()}")
        return list(dict.fromkeys(roles))


class PeopleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    areas: dict[str, AreaEntry] = Field(min_length=1)
    people: list[PersonEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "PeopleFile":
        problems: list[str] = []
        seen: dict[str, str] = {}
        for person in self.people:
            for key in (person.id, *person.aliases):
                if key in seen:
                    problems.append(f"persona «{person.id}»: el identificador «{key}» ya lo usa «{seen[key]}»")
                else:
                    seen[key] = person.id
            if person.area and person.area not in self.areas:
                problems.append(f"persona «{person.id}»: área desconocida «{person.area}»; "
                                f"áreas: {', '.join(self.areas)}")
        ids = {p.id for p in self.people}
        directors: set[str] = set()
        for code, area in self.areas.items():
            if area.director is None:
                continue
            if area.director not in ids:
                problems.append(f"área «{code}»: el director «{area.director}» no figura en people")
            directors.add(area.director)
        for person in self.people:
            if Role.DIRECTOR.value in person.roles and person.id not in directors:
                problems.append(f"persona «{person.id}»: tiene el rol DIRECTOR pero no dirige ningún área "
                                "(indícalo en areas.<código>.director)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_people_file(path: Path) -> PeopleFile:
    """Read and validate the people file; DirectoryConfigError names the entry at fault."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DirectoryConfigError(f"No se encontró el archivo de personas «{path}».") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (línea {mark.line + 1}, columna {mark.column + 1})" if mark else ""
        raise DirectoryConfigError(f"{path}: YAML inválido{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise DirectoryConfigError(f"{path}: se esperaba un mapa con las claves «areas» y «people».")
    try:
        return PeopleFile.model_validate(raw)
    except ValidationError as exc:
        raise DirectoryConfigError(f"{path}: " + " | ".join(_describe(err, raw) for err in exc.errors())) from exc


def _describe(err: dict[str, Any], raw: dict) -> str:
    loc = list(err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    where = []
    if len(loc) >= 2 and loc[0] == "people" and isinstance(loc[1], int):
        entry = (raw.get("people") or [])[loc[1]]
        pid = entry.get("id") if isinstance(entry, dict) else None
        where.append(f"people[{loc[1]}]" + (f" (id «{pid}»)" if pid else ""))
        loc = loc[2:]
    elif len(loc) >= 2 and loc[0] == "areas":
        where.append(f"área «{loc[1]}»")
        loc = loc[2:]
    where += [str(part) for part in loc]
    return f"{'.'.join(where)}: {message}" if where else message


# ── The directory ──────────────────────────────────────────────────────────────────────────────


@dataclass
class _Entry:
    id: str
    name: str
    email: str = ""
    area: str = ""
    roles: set[Role] = field(default_factory=set)
    aliases: list[str] = field(default_factory=list)


class YamlDirectory:
    """Directory port from a YAML file, with a local override layer persisted as JSON.

    The override layer is for local mode: the bot registers people it meets in Teams (`ensure_person`)
    and its local-only command "rol …" lets a person take any role (`grant_role`). Give
    `overrides_path` (under the data folder) so both survive restarts; without it they live in memory.
    `match_names` lets a person be found by display name too (local mode only: names are not unique
    and anyone can choose theirs).
    """

    def __init__(self, path: str | Path, overrides_path: str | Path | None = None, *,
                 match_names: bool = False) -> None:
        self.path = Path(path)
        self.overrides_path = Path(overrides_path) if overrides_path else None
        self.match_names = match_names
        self._lock = threading.Lock()
        self._base = load_people_file(self.path)
        self._overrides = self._load_overrides()
        self._rebuild()

    # ── Directory port ──

    async def person(self, person_id: str) -> Person | None:
        entry = self._find(person_id)
        return self._person(entry) if entry else None

    async def people_with_role(self, role: str) -> list[Person]:
        role = Role(role)
        people = (self._person(e) for e in self._people.values())
        return [p for p in people if p.has(role)]

    async def director_of(self, area: str) -> Person | None:
        pid = self._directors.get(area)
        return self._person(self._people[pid]) if pid in self._people else None

    async def areas(self) -> dict[str, str]:
        return dict(self._areas)

    # ── Local override layer ──

    async def ensure_person(self, person_id: str, name: str, email: str = "") -> Person:
        """The person Teams says is talking; someone new is registered as a REQUESTER with no area."""
        person_id = person_id.strip()
        if not person_id:
            raise DirectoryError("Falta el identificador de la persona.")
        with self._lock:
            entry = self._find(person_id, by_name=False)
            changed = False
            if entry is None and self.match_names:
                entry = self._find(name, by_name=True)
                if entry is not None:  # remember the Teams id, so the next lookup needs no name
                    record = self._record(entry.id)
                    record["aliases"] = sorted({*record.get("aliases", []), person_id})
                    changed = True
            if entry is None:
                self._record(person_id).update({"name": name.strip() or person_id, "email": email.strip(),
                                                "added": True})
                changed = True
            elif email.strip() and not entry.email:
                self._record(entry.id)["email"] = email.strip()
                changed = True
            if changed:
                self._commit()
            return self._person(self._find(person_id, by_name=False))

    async def grant_role(self, person_id: str, role: str | Role, area: str | None = None, *,
                         exclusive: bool = False) -> Person:
        """Give a person a role (DIRECTOR: of `area`, or of their own area); with `exclusive`, only that role."""
        role = _role(role)
        with self._lock:
            entry = self._require(person_id)
            if area is not None and area not in self._areas:
                raise DirectoryError(f"Área desconocida «{area}». Áreas: {', '.join(self._areas)}.")
            record = self._record(entry.id)
            if exclusive:
                record["roles_replace"], record["roles_add"], record["roles_remove"] = [], [], []
                for code, pid in self._directors.items():
                    if pid == entry.id:
                        self._overrides["directors"][code] = None
            if role is Role.DIRECTOR:
                target = area or entry.area
                if not target:
                    raise DirectoryError("Indica el área que dirige, por ejemplo: rol director DE.")
                self._overrides["directors"][target] = entry.id
            else:
                if not exclusive:
                    record["roles_remove"] = [r for r in record.get("roles_remove", []) if r != role.value]
                if role.value not in record.get("roles_replace", []):
                    record["roles_add"] = sorted({*record.get("roles_add", []), role.value})
                if area is not None:
                    record["area"] = area
            self._commit()
            return self._person(self._people[entry.id])

    async def revoke_role(self, person_id: str, role: str | Role, area: str | None = None) -> Person:
        """Take a role away (DIRECTOR: of `area`, or of every area the person directs)."""
        role = _role(role)
        with self._lock:
            entry = self._require(person_id)
            if role is Role.DIRECTOR:
                for code, pid in self._directors.items():
                    if pid == entry.id and (area is None or code == area):
                        self._overrides["directors"][code] = None
            else:
                record = self._record(entry.id)
                for key in ("roles_add", "roles_replace"):
                    if key in record:
                        record[key] = [r for r in record[key] if r != role.value]
                record["roles_remove"] = sorted({*record.get("roles_remove", []), role.value})
            self._commit()
            return self._person(self._people[entry.id])

    # ── Internals ──

    def _find(self, key: str, by_name: bool | None = None) -> _Entry | None:
        key = (key or "").strip()
        if not key:
            return None
        if by_name is not True:
            pid = key if key in self._people else self._aliases.get(key)
            if pid is not None:
                return self._people[pid]
        if by_name is True or (by_name is None and self.match_names):
            matches = self._names.get(_fold(key), [])
            if len(matches) == 1:  # an ambiguous name matches nobody rather than the wrong person
                return self._people[matches[0]]
        return None

    def _require(self, person_id: str) -> _Entry:
        entry = self._find(person_id, by_name=False)
        if entry is None:
            raise DirectoryError(f"No se conoce a la persona «{person_id}».")
        return entry

    def _person(self, entry: _Entry) -> Person:
        directs = frozenset(code for code, pid in self._directors.items() if pid == entry.id)
        roles = set(entry.roles) | ({Role.DIRECTOR} if directs else set())
        return Person(id=entry.id, name=entry.name, roles=frozenset(roles), directs=directs,
                      area=entry.area, email=entry.email)

    def _record(self, person_id: str) -> dict:
        return self._overrides["people"].setdefault(person_id, {})

    def _rebuild(self) -> None:
        """The effective directory: the file, then the overrides on top (skipping what no longer applies)."""
        self._areas = {code: area.name for code, area in self._base.areas.items()}
        self._directors: dict[str, str | None] = {code: a.director for code, a in self._base.areas.items()}
        people: dict[str, _Entry] = {}
        for p in self._base.people:
            people[p.id] = _Entry(p.id, p.name, p.email, p.area,
                                  {Role(r) for r in p.roles if r != Role.DIRECTOR.value}, list(p.aliases))
        for pid, record in self._overrides["people"].items():
            entry = people.get(pid)
            if entry is None:
                if not record.get("added"):
                    log.warning("directory override for unknown person %s ignored", pid)
                    continue
                entry = people[pid] = _Entry(pid, record.get("name") or pid, roles={Role.REQUESTER})
            if record.get("email"):
                entry.email = record["email"]
            if "roles_replace" in record:
                entry.roles = {Role(r) for r in record["roles_replace"]}
            entry.roles |= {Role(r) for r in record.get("roles_add", [])}
            entry.roles -= {Role(r) for r in record.get("roles_remove", [])}
            if record.get("area") in self._areas:
                entry.area = record["area"]
            entry.aliases += [a for a in record.get("aliases", []) if a not in entry.aliases]
        for code, pid in self._overrides["directors"].items():
            if code in self._areas and (pid is None or pid in people):
                self._directors[code] = pid
        self._people = people
        self._aliases = {alias: e.id for e in people.values() for alias in e.aliases if alias not in people}
        self._names: dict[str, list[str]] = {}
        for e in people.values():
            self._names.setdefault(_fold(e.name), []).append(e.id)

    def _load_overrides(self) -> dict:
        empty = {"version": 1, "people": {}, "directors": {}}
        if self.overrides_path is None or not self.overrides_path.exists():
            return empty
        try:
            data = json.loads(self.overrides_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("people", {}), dict):
                raise ValueError("estructura inesperada")
            for record in data.get("people", {}).values():
                for key in ("roles_add", "roles_remove", "roles_replace"):
                    for role in record.get(key, []):
                        Role(role)
        except ValueError as exc:  # includes JSONDecodeError; losing granted roles silently would be worse
            raise DirectoryConfigError(f"{self.overrides_path}: archivo de ajustes locales ilegible ({exc}). "
                                       "Corrígelo o bórralo para volver al archivo de personas.") from exc
        return {**empty, **data}

    def _commit(self) -> None:
        self._rebuild()
        if self.overrides_path is None:
            return
        self.overrides_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.overrides_path.parent, prefix=".overrides-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._overrides, fh, ensure_ascii=False, indent=2, sort_keys=True)
            os.replace(tmp, self.overrides_path)  # atomic: a crash leaves the old file or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _role(role: str | Role) -> Role:
    try:
        role = Role(role)
    except ValueError:
        raise DirectoryError(f"Rol desconocido «{role}». Roles: {_role_names()}.") from None
    if role is Role.OCOIM_TEAM:
        raise DirectoryError("OCOIM_TEAM es el conjunto de PRESS y COMMS: asigna uno de esos roles.")
    return role


def _role_names() -> str:
    return ", ".join(r.value for r in ASSIGNABLE_ROLES)


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()
