"""Use cases on requests: file one, act on one, and read what a person may see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from procedure import engine
from procedure.engine import Action, Command, Intake, Outcome, Person
from procedure.model import END, Procedure
from procedure.request import HistoryEntry, Request
from procedure.roles import Role
from services.ports import Clock, ConcurrencyConflict, Directory, NotFound, RequestQuery, RequestStore


# Enough for any office; the list card shows the first ones and says how many there are.
PENDING_LIMIT = 10_000


class NoAccess(engine.ActionRefused):
    code = "forbidden"


@dataclass(frozen=True)
class RequestView:
    """What one person sees of a request: the request, what they may do, and who may act now."""

    request: Request
    actions: list[Action]
    actor_ids: list[str]  # the people who may act on the current step now (for refresh.userIds)
    pending_with: str  # a Spanish description of who must act


class RequestService:
    def __init__(self, proc: Procedure, store: RequestStore, directory: Directory, clock: Clock,
                 lead_times: dict[str, int]):
        self.proc = proc
        self.store = store
        self.directory = directory
        self.clock = clock
        self.lead_times = lead_times

    async def file(self, intake: Intake, requester: Person, start: str | None = None) -> Outcome:
        now = self.clock.now()
        areas = set(await self.directory.areas())
        # Validate before taking a number, so a refused form does not burn one.
        engine.file_request(self.proc, intake, "0000-0000", requester, now, areas, self.lead_times, start)
        number = await self.store.next_number(now.year)
        outcome = engine.file_request(self.proc, intake, number, requester, now, areas, self.lead_times, start)
        await self.store.create(outcome.request, outcome.history, outcome.effects)
        return outcome

    async def act(self, number: str, command: Command | Callable[[Request], Command], actor: Person, *,
                  must_see: bool = False) -> Outcome:
        """Apply one action; refused actions and lost races change nothing (StaleVersion is raised).

        `command` may be built from the request as read here (a card's inputs depend on its step), so a
        click costs one read and one write; with `must_see`, someone outside the request gets NoAccess."""
        request = await self.store.get(number)
        if must_see and not self.can_see(request, actor):
            raise NoAccess(f"No participa en la solicitud {number}.")
        if not isinstance(command, Command):
            command = command(request)
        if command.action is Action.REASSIGN and command.assignee is not None:
            command = _with_assignee(command, await self.directory.person(command.assignee.id) or command.assignee)
        outcome = engine.apply(self.proc, request, command, actor, self.clock.now(), self.lead_times)
        try:
            await self.store.save(outcome.request, request.version, outcome.history, outcome.effects)
        except ConcurrencyConflict as exc:
            raise engine.StaleVersion(
                f"Otra persona actuó sobre la solicitud {number} al mismo tiempo; se muestra su estado actual."
            ) from exc
        return outcome

    async def view(self, number: str, person: Person) -> RequestView:
        request = await self.store.get(number)
        if not self.can_see(request, person):
            raise NoAccess(f"No participa en la solicitud {number}.")
        return await self.view_of(request, person)

    async def view_of(self, request: Request, person: Person) -> RequestView:
        """The view of a request already in hand (e.g. just saved): no store read."""
        return RequestView(
            request=request,
            actions=engine.open_actions(self.proc, request, person),
            actor_ids=await self.actor_ids(request),
            pending_with=await self.pending_with(request),
        )

    def can_see(self, request: Request, person: Person) -> bool:
        """OCOIM sees every request; others only those they take part in."""
        return (
            person.is_ocoim
            or person.id == request.requester_id
            or person.id in request.assignees.values()
            or request.area in person.directs
            or (bool(person.area) and person.area in (request.area, *request.involved_areas))
        )

    async def actor_ids(self, request: Request) -> list[str]:
        if request.step_id == END or not request.is_open:
            return []
        role = engine.responsible_role(self.proc, request)
        if role is None:
            return []
        if role in request.assignees:
            return [request.assignees[role]]
        if role == Role.REQUESTER.value:
            return [request.requester_id]
        if role == Role.DIRECTOR.value:
            director = await self.directory.director_of(request.area)
            return [director.id] if director else []
        members = [Role.PRESS.value, Role.COMMS.value] if role == Role.OCOIM_TEAM.value else [role]
        ids: list[str] = []
        for member_role in members:
            ids += [p.id for p in await self.directory.people_with_role(member_role)]
        return list(dict.fromkeys(ids))[:60]

    async def pending_with(self, request: Request) -> str:
        if request.step_id == END:
            return "Nadie: la solicitud fue entregada."
        role = engine.responsible_role(self.proc, request)
        if role in request.assignees:
            person = await self.directory.person(request.assignees[role])
            if person:
                return f"{person.name} ({Role(role).label})"
        if role == Role.REQUESTER.value:
            return f"{request.requester_name or 'El área usuaria'} ({request.area})"
        if role == Role.DIRECTOR.value:
            director = await self.directory.director_of(request.area)
            return f"{director.name} (Director(a) de {request.area})" if director else Role(role).label
        return Role(role).label if role else ""

    async def history(self, number: str, person: Person) -> list[HistoryEntry]:
        request = await self.store.get(number)
        if not self.can_see(request, person):
            raise NoAccess(f"No participa en la solicitud {number}.")
        return await self.store.history(number)

    async def mine(self, person: Person) -> list[Request]:
        """The requests a person filed or takes part in, newest first."""
        found = await self.store.find(RequestQuery(participant=person.id))
        return sorted(found, key=lambda r: r.number, reverse=True)

    async def pending_for(self, person: Person) -> list[Request]:
        """Open requests whose current step this person may act on now."""
        # Only the steps one of the person's roles can be responsible for are read from the store
        # (a requester has none: no read at all); the engine still decides each request.
        candidates = await self.store.find(RequestQuery(open_only=True, step_ids=self.steps_for(person),
                                                        limit=PENDING_LIMIT))
        return [r for r in candidates if engine.may_act_on_step(self.proc, r, person)]

    def steps_for(self, person: Person) -> tuple[str, ...]:
        """The steps whose responsible role (either audience) this person holds."""
        steps = []
        for step in self.proc.by_id.values():
            roles = {step.roles[0], step.internal_audience_role} if step.roles else set()
            for role in roles - {None}:
                if (role == Role.DIRECTOR.value and person.directs) or (
                        role != Role.DIRECTOR.value and person.has(role)):
                    steps.append(step.id)
                    break
        return tuple(steps)

    async def get(self, number: str) -> Request:
        return await self.store.get(number)


def _with_assignee(command: Command, person: Person) -> Command:
    from dataclasses import replace

    return replace(command, assignee=person)


__all__ = ["RequestService", "RequestView", "NoAccess", "NotFound"]
