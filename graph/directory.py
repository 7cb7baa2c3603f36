"""Who is who from Entra ID: roles are group memberships, area directors are configured, kept for a few minutes."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
    TransitiveMembersRequestBuilder,
)

from procedure.engine import Person
from procedure.roles import Role

CACHE_SECONDS = 300


class GraphDirectory:
    """Directory port: one Entra group per role (transitive members), one configured person per area's director.

    Everything is read at once and kept `cache_seconds` (five minutes): a card click must not wait on
    a group listing, and a membership change shows within minutes.
    """

    def __init__(self, client: GraphServiceClient, role_groups: dict[str, str], area_directors: dict[str, str],
                 areas: dict[str, str], *, cache_seconds: float = CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.role_groups = {Role(role).value: gid for role, gid in role_groups.items()}
        self.area_directors = dict(area_directors)
        self._areas = dict(areas)
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._people: dict[str, Person] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def person(self, person_id: str) -> Person | None:
        return (await self._directory()).get(person_id)

    async def people_with_role(self, role: str) -> list[Person]:
        role = Role(role)
        return [p for p in (await self._directory()).values() if p.has(role)]

    async def director_of(self, area: str) -> Person | None:
        person_id = self.area_directors.get(area)
        return (await self._directory()).get(person_id) if person_id else None

    async def areas(self) -> dict[str, str]:
        return dict(self._areas)

    async def _directory(self) -> dict[str, Person]:
        if self._fresh():
            return self._people
        async with self._lock:  # one refresh at a time; the others wait for it
            if not self._fresh():
                self._people = await self._load()
                self._loaded_at = self._monotonic()
        return self._people

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._monotonic() - self._loaded_at < self.cache_seconds

    async def _load(self) -> dict[str, Person]:
        found: dict[str, dict] = {}
        for role, group_id in self.role_groups.items():
            for member in await self._members(group_id):
                if not member.id:
                    continue
                entry = found.setdefault(member.id, {"name": member.display_name or member.id,
                                                     "email": getattr(member, "mail", None) or "", "roles": set()})
                entry["roles"].add(Role(role))
        directs: dict[str, set[str]] = {}
        for area, person_id in self.area_directors.items():
            directs.setdefault(person_id, set()).add(area)
            if person_id not in found:
                found[person_id] = await self._user(person_id)
        return {pid: Person(pid, e["name"], frozenset(e["roles"] | ({Role.DIRECTOR} if pid in directs else set())),
                            frozenset(directs.get(pid, set())), email=e["email"])
                for pid, e in found.items()}

    async def _members(self, group_id: str) -> list:
        builder = self.client.groups.by_group_id(group_id).transitive_members
        page = await builder.get(RequestConfiguration(query_parameters=(
            TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(top=100))))
        members = []
        while page is not None:
            members += [m for m in page.value or [] if (m.odata_type or "").endswith("user")]
            if not page.odata_next_link:
                break
            page = await builder.with_url(page.odata_next_link).get()
        return members

    async def _user(self, person_id: str) -> dict:
        """A director outside every role group: their name and mail from their user object."""
        try:
            user = await self.client.users.by_user_id(person_id).get()
        except APIError:
            return {"name": person_id, "email": "", "roles": set()}
        return {"name": user.display_name or person_id, "email": user.mail or "", "roles": set()}
