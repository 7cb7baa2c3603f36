"""The contract every RequestStore (SQLite now, SharePoint later) must pass: subclass it and provide `store`."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from procedure.definition import PROCEDURE
from procedure.engine import (
    Action,
    Command,
    DeliverableInput,
    Intake,
    MeetingProposal,
    Outcome,
    Person,
    apply,
    file_request,
    open_actions,
)
from procedure.model import StepKind
from procedure.request import Classification, Effect, EffectKind, Status
from procedure.roles import Role
from services.ports import ConcurrencyConflict, NotFound, RequestQuery, RequestStore

LIMA = ZoneInfo("America/Lima")
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=LIMA)
AREAS = {"DE", "DSI", "SASA"}
LEAD_TIMES = {"A": 20, "B": 10, "default": 10}

COORDINATOR = Person("c", "Carla", frozenset({Role.COORDINATOR}))
COORDINATOR_2 = Person("c2", "Claudia", frozenset({Role.COORDINATOR}))
PRESS = Person("p", "Pedro", frozenset({Role.PRESS}))
COMMS = Person("m", "María", frozenset({Role.COMMS}))
DESIGNER = Person("d", "Diego", frozenset({Role.DESIGNER}))
DIRECTOR = Person("x", "Dora", frozenset({Role.DIRECTOR}), directs=frozenset({"DE", "DSI"}))
REQUESTER = Person("r", "Rosa", frozenset({Role.REQUESTER}), area="DE")
REQUESTER_DSI = Person("s", "Sergio", frozenset({Role.REQUESTER}), area="DSI")
PEOPLE = [COORDINATOR, PRESS, COMMS, DESIGNER, DIRECTOR, REQUESTER]


# ── Driving the engine, as the bot would ──


def filed(number: str, requester: Person = REQUESTER, title: str = "Video institucional 2027") -> Outcome:
    intake = Intake(title, requester.area, date(2027, 2, 1), purpose="Para la web institucional",
                    links=("https://example.org/brief",), involved_areas=("SASA",))
    return file_request(PROCEDURE, intake, number, requester, NOW, AREAS, LEAD_TIMES)


def step_forward(request, action: Action | None = None, **extra) -> Outcome:
    """Whoever is in charge of the current step does it, with the deliverables it asks for."""
    for person in PEOPLE:
        offered = [a for a in open_actions(PROCEDURE, request, person)
                   if a in (Action.COMPLETE, Action.APPROVE, Action.REQUEST_CHANGES)]
        if not offered:
            continue
        step = PROCEDURE[request.step_id]
        kw = dict(deliverables=tuple(DeliverableInput(k, f"https://example.org/{k.value}") for k in step.deliverables))
        if step.kind is StepKind.MEETING:
            kw["meeting"] = MeetingProposal(NOW + timedelta(days=1))
        if request.step_id == "PRE-01":
            kw["classification"] = Classification(piece_type="A", topic="institutional",
                                                  services={"animation", "editing"})
        if request.step_id == "PRO-01":
            kw["production_deadline"] = date(2027, 1, 20)
        kw.update(extra)
        command = Command(action or offered[0], request.version, request.step_id, **kw)
        return apply(PROCEDURE, request, command, person, NOW, LEAD_TIMES)
    raise AssertionError(f"nobody can act at {request.step_id}")


def coordinator(request, action: Action, **kw) -> Outcome:
    return apply(PROCEDURE, request, Command(action, request.version, **kw), COORDINATOR, NOW, LEAD_TIMES)


def edit(request, purpose: str, by: Person = REQUESTER) -> Outcome:
    return apply(PROCEDURE, request, Command(Action.EDIT, request.version, changes={"purpose": purpose}),
                 by, NOW, LEAD_TIMES)


async def file_into(store: RequestStore, requester: Person = REQUESTER, title: str = "Video institucional 2027"):
    outcome = filed(await store.next_number(2026), requester, title)
    await store.create(outcome.request, outcome.history, outcome.effects)
    return outcome


async def save(store: RequestStore, request, outcome: Outcome):
    await store.save(outcome.request, request.version, outcome.history, outcome.effects)
    return outcome.request


def reminder(number: str, day: date) -> Effect:
    return Effect(id=f"{number}/PRE-01/remind/{day.isoformat()}", kind=EffectKind.NOTIFY, request_number=number,
                  payload={"to": {"role": "COORDINATOR"}, "template": "reminder", "step_id": "PRE-01"})


class StoreContract:
    """Behaviour every RequestStore must show. Subclasses provide an empty store in the `store` fixture."""

    @pytest.fixture
    async def store(self) -> RequestStore:
        raise NotImplementedError("a store test class provides the `store` fixture")

    # ── requests ──

    async def test_is_a_request_store(self, store):
        assert isinstance(store, RequestStore)

    async def test_created_request_reads_back_equal_with_its_history(self, store):
        outcome = await file_into(store)
        assert await store.get(outcome.request.number) == outcome.request
        assert await store.history(outcome.request.number) == outcome.history

    async def test_a_request_far_along_reads_back_equal(self, store):
        # Classification, deliverables, observations and review rounds all survive the round trip.
        request = (await file_into(store)).request
        while request.step_id != "PRE-11":
            if request.step_id == "PRE-10":
                outcome = step_forward(request, Action.REQUEST_CHANGES, observation="Ajustar el guion")
            else:
                outcome = step_forward(request)
            request = await save(store, request, outcome)
        stored = await store.get(request.number)
        assert stored == request
        assert stored.classification is not None and stored.observations and stored.deliverables
        assert stored.rounds("PRE-10") == 1

    async def test_unknown_request_is_not_found(self, store):
        with pytest.raises(NotFound):
            await store.get("2026-9999")

    async def test_creating_an_existing_number_again_is_refused(self, store):
        first = await file_into(store)
        other = filed(first.request.number, REQUESTER_DSI, "Otro video")
        with pytest.raises(ConcurrencyConflict):
            await store.create(other.request, other.history, other.effects)
        assert await store.get(first.request.number) == first.request
        assert await store.history(first.request.number) == first.history

    async def test_save_on_the_current_version_stores_the_transition_and_its_effects(self, store):
        filed_ = await file_into(store)
        outcome = step_forward(filed_.request)
        await save(store, filed_.request, outcome)
        assert await store.get(filed_.request.number) == outcome.request
        assert await store.history(filed_.request.number) == filed_.history + outcome.history
        for effect in outcome.effects:
            record = await store.effect(effect.id)
            assert record is not None and record.effect == effect and record.status == "pending"

    async def test_save_on_a_stale_version_conflicts_and_writes_nothing(self, store):
        filed_ = await file_into(store)
        completed = step_forward(filed_.request)
        put_on_hold = coordinator(filed_.request, Action.HOLD, reason="Esperando insumos del área")
        await save(store, filed_.request, completed)
        history_before = await store.history(filed_.request.number)
        due_before = await store.due_effects(NOW)

        with pytest.raises(ConcurrencyConflict):
            await save(store, filed_.request, put_on_hold)

        assert await store.get(filed_.request.number) == completed.request
        assert await store.history(filed_.request.number) == history_before
        assert await store.due_effects(NOW) == due_before
        assert [r.effect for r in due_before] == filed_.effects + completed.effects

    async def test_saving_an_unknown_request_is_not_found(self, store):
        outcome = filed("2026-0042")
        later = edit(outcome.request, "Otro propósito")
        with pytest.raises(NotFound):
            await store.save(later.request, outcome.request.version, later.history, later.effects)

    async def test_fifty_concurrent_saves_on_one_version_exactly_one_wins(self, store):
        filed_ = await file_into(store)
        edits = [edit(filed_.request, f"Propósito corregido n.º {i}") for i in range(50)]
        results = await asyncio.gather(*(save(store, filed_.request, e) for e in edits), return_exceptions=True)

        conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
        winners = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
        assert len(winners) == 1 and len(conflicts) == 49
        winner = edits[winners[0]]
        assert await store.get(filed_.request.number) == winner.request
        assert await store.history(filed_.request.number) == filed_.history + winner.history

    async def test_request_numbers_run_per_year(self, store):
        assert [await store.next_number(2026) for _ in range(3)] == ["2026-0001", "2026-0002", "2026-0003"]
        assert await store.next_number(2027) == "2027-0001"
        assert await store.next_number(2026) == "2026-0004"

    async def test_fifty_concurrent_request_numbers_are_distinct_and_sequential(self, store):
        numbers = await asyncio.gather(*(store.next_number(2026) for _ in range(50)))
        assert sorted(numbers) == [f"2026-{i:04d}" for i in range(1, 51)]

    async def test_history_comes_in_version_then_seq_order(self, store):
        request = (await file_into(store)).request
        expected = list(await store.history(request.number))
        while request.step_id != "PRO-01":  # passes PRE-10 and PRE-14, conformities that write two entries
            outcome = step_forward(request)
            request = await save(store, request, outcome)
            expected += outcome.history
        history = await store.history(request.number)
        assert history == expected
        assert [(h.version, h.seq) for h in history] == sorted((h.version, h.seq) for h in history)
        assert any(h.seq == 1 for h in history)

    async def test_history_of_an_unknown_request_is_empty(self, store):
        assert await store.history("2026-9999") == []

    # ── finding requests ──

    async def test_find_open_only_leaves_out_cancelled_but_keeps_on_hold(self, store):
        active = (await file_into(store, title="Activa")).request
        held = (await file_into(store, title="En espera")).request
        cancelled = (await file_into(store, title="Cancelada")).request
        held = await save(store, held, coordinator(held, Action.HOLD, reason="Esperando insumos"))
        cancelled = await save(store, cancelled, coordinator(cancelled, Action.CANCEL, reason="Ya no se necesita"))

        open_ = await store.find(RequestQuery(open_only=True))
        assert [r.number for r in open_] == [active.number, held.number]
        assert {r.status for r in await store.find(RequestQuery())} == {Status.ACTIVE, Status.ON_HOLD,
                                                                       Status.CANCELLED}

    async def test_find_by_area_and_step(self, store):
        de = (await file_into(store, REQUESTER)).request
        dsi = (await file_into(store, REQUESTER_DSI)).request
        de = await save(store, de, step_forward(de))  # now at PRE-02

        assert await store.find(RequestQuery(area="DSI")) == [dsi]
        assert await store.find(RequestQuery(step_id="PRE-02")) == [de]
        assert await store.find(RequestQuery(area="DE", step_id="PRE-01")) == []

    async def test_find_by_participant_covers_requester_and_assignees(self, store):
        de = (await file_into(store, REQUESTER)).request
        dsi = (await file_into(store, REQUESTER_DSI)).request
        dsi = await save(store, dsi, coordinator(dsi, Action.REASSIGN, assignee=COORDINATOR_2))

        assert await store.find(RequestQuery(participant=REQUESTER.id)) == [de]
        assert await store.find(RequestQuery(participant=COORDINATOR_2.id)) == [dsi]
        assert await store.find(RequestQuery(participant=PRESS.id)) == []

    async def test_find_returns_requests_by_number_up_to_the_limit(self, store):
        numbers = [(await file_into(store, title=f"Pieza {i}")).request.number for i in range(5)]
        assert [r.number for r in await store.find(RequestQuery(limit=3))] == numbers[:3]

    # ── effects ──

    async def test_due_effects_are_the_pending_ones_oldest_first(self, store):
        filed_ = await file_into(store)
        outcome = step_forward(filed_.request)
        await save(store, filed_.request, outcome)
        due = await store.due_effects(NOW)
        assert [r.effect for r in due] == filed_.effects + outcome.effects
        assert all(r.status == "pending" and r.attempts == 0 for r in due)
        assert [r.effect for r in await store.due_effects(NOW, limit=1)] == filed_.effects[:1]

    async def test_a_claimed_effect_cannot_be_claimed_again_until_its_lease_ends(self, store):
        effect = (await file_into(store)).effects[0]
        assert await store.claim_effect(effect.id, NOW, lease_seconds=60)
        assert not await store.claim_effect(effect.id, NOW + timedelta(seconds=30))
        assert effect.id not in [r.id for r in await store.due_effects(NOW + timedelta(seconds=30))]
        # The worker that held it died: after the lease it is due and can be taken again.
        later = NOW + timedelta(seconds=61)
        assert effect.id in [r.id for r in await store.due_effects(later)]
        assert await store.claim_effect(effect.id, later)

    async def test_a_completed_effect_keeps_its_result_and_is_no_longer_due(self, store):
        effect = (await file_into(store)).effects[0]
        assert await store.claim_effect(effect.id, NOW)
        await store.complete_effect(effect.id, {"message_id": "1:abc"})
        record = await store.effect(effect.id)
        assert record.status == "done" and record.result == {"message_id": "1:abc"}
        assert effect.id not in [r.id for r in await store.due_effects(NOW + timedelta(days=1))]
        assert not await store.claim_effect(effect.id, NOW + timedelta(days=1))

    async def test_a_failed_attempt_with_retry_comes_back_at_the_retry_time(self, store):
        effect = (await file_into(store)).effects[0]
        retry_at = NOW + timedelta(minutes=5)
        assert await store.claim_effect(effect.id, NOW)
        await store.fail_effect(effect.id, "Graph respondió 503", retry_at)

        assert effect.id not in [r.id for r in await store.due_effects(NOW + timedelta(minutes=4))]
        due = {r.id: r for r in await store.due_effects(retry_at)}
        assert due[effect.id].attempts == 1 and due[effect.id].last_error == "Graph respondió 503"
        assert due[effect.id].next_attempt_at == retry_at
        assert await store.claim_effect(effect.id, retry_at)
        await store.fail_effect(effect.id, "Graph respondió 503 otra vez", retry_at + timedelta(minutes=10))
        assert (await store.effect(effect.id)).attempts == 2
        assert await store.failed_effects() == []

    async def test_an_effect_failed_for_good_is_listed_for_the_coordinator_and_never_due(self, store):
        effects = (await file_into(store)).effects
        assert await store.claim_effect(effects[0].id, NOW)
        await store.fail_effect(effects[0].id, "La persona no existe en el directorio", None)

        failed = await store.failed_effects()
        assert [r.effect for r in failed] == [effects[0]]
        assert failed[0].status == "failed" and failed[0].attempts == 1
        assert failed[0].last_error == "La persona no existe en el directorio"
        assert effects[0].id not in [r.id for r in await store.due_effects(NOW + timedelta(days=30))]
        assert not await store.claim_effect(effects[0].id, NOW + timedelta(days=30))

    async def test_unknown_effect_is_none(self, store):
        assert await store.effect("2026-0001/v1/9-notify") is None

    async def test_add_effects_never_adds_the_same_reminder_twice(self, store):
        number = (await file_into(store)).request.number
        monday, tuesday = reminder(number, date(2026, 12, 7)), reminder(number, date(2026, 12, 8))
        assert await store.add_effects([monday]) == [monday.id]
        assert await store.add_effects([monday, tuesday]) == [tuesday.id]
        # Even once delivered, a reminder for the same day is not queued again.
        assert await store.claim_effect(monday.id, NOW)
        await store.complete_effect(monday.id, {})
        assert await store.add_effects([monday]) == []
        assert (await store.effect(monday.id)).status == "done"
        due = [r.id for r in await store.due_effects(NOW)]
        assert due.count(tuesday.id) == 1 and monday.id not in due

    async def test_stored_effect_ids_tells_which_effects_exist_in_one_call(self, store):
        outcome = await file_into(store)
        number = outcome.request.number
        monday, tuesday = reminder(number, date(2026, 12, 7)), reminder(number, date(2026, 12, 8))
        await store.add_effects([monday])
        # An effect still waiting in the request's own write (its outbox) counts as stored too.
        asked = [monday.id, tuesday.id, outcome.effects[0].id, monday.id]
        assert await store.stored_effect_ids(asked) == {monday.id, outcome.effects[0].id}
        assert await store.stored_effect_ids([]) == set()

    # ── conversation references ──

    async def test_conversation_references_are_saved_and_replaced(self, store):
        assert await store.get_reference("r") is None
        first = {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba.trafficmanager.net/amer/",
                 "user": {"id": "29:1", "name": "Rosa"}}
        await store.save_reference("r", first)
        assert await store.get_reference("r") == first
        second = {**first, "conversation": {"id": "a:2"}}
        await store.save_reference("r", second)
        assert await store.get_reference("r") == second
        assert await store.get_reference("p") is None
