"""Reminders, the coordinator's digest and escalations, walked morning by morning on a controllable clock."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from config.deadlines import load_deadlines
from local.clock import FixedClock
from local.directory import YamlDirectory
from local.sqlite_store import SqliteRequestStore
from procedure.definition import PROCEDURE
from procedure.deadlines import StepState, at_risk, expected_path, status_of, step_deadline
from procedure.engine import Action, Intake, apply, file_request
from procedure.model import StepKind
from services.reminders import ReminderJob
from tests.driving import AREAS, LEAD_TIMES, LIMA, NOW, REQUESTER, classification, full_command, who_can

ROOT = Path(__file__).resolve().parents[1]
DEADLINES = load_deadlines(ROOT / "config" / "deadlines.yaml")
DIRECTOR_DE = "Jorge Gutiérrez Sánchez"  # the example directory's director of DE


def morning(day: int, hour: int = 8) -> datetime:
    return datetime(2026, 12, day, hour, 0, tzinfo=LIMA)


async def drive(store, number: str, until: str, *, now: datetime = NOW, due: date = date(2027, 3, 1),
                c=None):
    """File a request and act on it (as the procedure's people) until it reaches `until`, saving each step."""
    c = c or classification()
    intake = Intake(title=f"Video {number}", area="DE", due_date=due, purpose="Portal institucional")
    outcome = file_request(PROCEDURE, intake, number, REQUESTER, now, AREAS, LEAD_TIMES)
    await store.create(outcome.request, outcome.history, outcome.effects)
    request = outcome.request
    while request.step_id != until:
        step = PROCEDURE[request.step_id]
        action = Action.APPROVE if step.kind is StepKind.REVIEW else Action.COMPLETE
        request = await act(store, request, action, now, c)
    return request


async def act(store, request, action: Action, now: datetime, c=None):
    actor = who_can(request, action)
    outcome = apply(PROCEDURE, request, full_command(request, action, c or classification()), actor, now, LEAD_TIMES)
    await store.save(outcome.request, request.version, outcome.history, outcome.effects)
    return outcome.request


def reminder_ids(store) -> set[str]:
    rows = store.conn.execute(
        "SELECT id FROM effects WHERE id LIKE 'reminder/%' OR id LIKE 'digest/%'").fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def directory():
    return YamlDirectory(ROOT / "config" / "people.example.yaml")


@pytest.fixture
async def store(tmp_path):
    s = SqliteRequestStore(tmp_path / "claqueta.db")
    yield s
    await s.close()


def job(store, directory, clock) -> ReminderJob:
    return ReminderJob(PROCEDURE, store, directory, clock, DEADLINES, escalate_after_days=3, morning_hour=8)


# ── Pure deadline rules ──────────────────────────────────────────────────────────────────────


async def test_pre14_deadline_skips_the_weekend_and_both_december_holidays(store):
    request = await drive(store, "2026-0001", "PRE-14")
    assert DEADLINES.days_for("PRE-14") == 3
    # Opened Friday 4: Monday 7 (1), Tuesday 8 and Wednesday 9 are holidays, Thursday 10 (2), Friday 11 (3).
    assert step_deadline(request, DEADLINES) == date(2026, 12, 11)
    assert status_of(request, date(2026, 12, 7), DEADLINES).state is StepState.ON_TIME
    assert status_of(request, date(2026, 12, 10), DEADLINES).state is StepState.DUE_SOON
    assert status_of(request, date(2026, 12, 11), DEADLINES).state is StepState.DUE_TODAY
    late = status_of(request, date(2026, 12, 15), DEADLINES)
    assert (late.state, late.days_overdue, late.label) == (StepState.OVERDUE, 2, "Vencido (2 días hábiles)")


def test_expected_path_follows_the_classification_and_skips_conformities():
    from tests.driving import new_request

    request = new_request().model_copy(update={"classification": classification("B", services=("editing",)),
                                               "step_id": "PRE-14"})
    assert expected_path(PROCEDURE, request) == [
        "PRO-01", "PRO-02", "PRO-06", "PRO-07", "PRO-10", "PRO-11", "POS-01", "POS-02", "POS-03", "POS-04",
        "POS-07", "POS-08"]


# ── The director who sits on PRE-14 across the holidays ──────────────────────────────────────


async def test_director_sitting_on_an_approval_gets_exactly_the_expected_reminders(store, directory):
    request = await drive(store, "2026-0001", "PRE-14")
    n = request.number
    clock = FixedClock(morning(5))
    reminders = job(store, directory, clock)
    created: dict[date, set[str]] = {}
    digests: dict[date, dict] = {}

    # 07:00 on a working Monday: too early, nothing yet.
    clock.set(morning(7, hour=7))
    assert (await reminders.run_once()).added == []

    for day in range(5, 19):
        clock.set(morning(day))
        if day == 11:  # an effect the dispatcher gave up on: the digest must show it
            await store.fail_effect(f"{n}/v1/0-notify", "Unreachable: sin referencia", None)
        if day == 16:  # the director finally approves, Wednesday afternoon (after this morning's run)
            run = await reminders.run_once()
            clock.set(morning(16, hour=15))
            request = await act(store, await store.get(n), Action.APPROVE, clock.now())
            assert request.step_id == "PRO-01"
        else:
            run = await reminders.run_once()
        created[date(2026, 12, day)] = set(run.added)
        digest = await store.effect(f"digest/2026-12-{day:02d}")
        if digest is not None:
            digests[date(2026, 12, day)] = digest.effect.payload

    director = {"role": "DIRECTOR", "area": "DE"}
    r = f"reminder/{n}/PRE-14"
    expected = {
        date(2026, 12, 7): {"digest/2026-12-07"},
        date(2026, 12, 10): {"digest/2026-12-10", f"{r}/before/2026-12-10"},
        date(2026, 12, 11): {"digest/2026-12-11", f"{r}/due/2026-12-11"},
        date(2026, 12, 14): {"digest/2026-12-14", f"{r}/overdue/2026-12-14", f"{r}/approval_overdue/2026-12-04"},
        date(2026, 12, 15): {"digest/2026-12-15", f"{r}/overdue/2026-12-15"},
        date(2026, 12, 16): {"digest/2026-12-16", f"{r}/overdue/2026-12-16", f"{r}/escalation/2026-12-04"},
        # Approved: the reminders move to the coordinator's PRO-01 (opened Wed 16, due Fri 18).
        date(2026, 12, 17): {"digest/2026-12-17", f"reminder/{n}/PRO-01/before/2026-12-17"},
        date(2026, 12, 18): {"digest/2026-12-18", f"reminder/{n}/PRO-01/due/2026-12-18"},
    }
    # Weekends (5, 6, 12, 13) and the holidays (8, 9) produce nothing at all.
    for day in (5, 6, 8, 9, 12, 13):
        expected[date(2026, 12, day)] = set()
    assert created == expected
    assert reminder_ids(store) == set().union(*expected.values())

    before = (await store.effect(f"{r}/before/2026-12-10")).effect.payload
    assert (before["to"], before["template"], before["deadline"]) == (director, "reminder_before", "2026-12-11")
    assert before["snooze_until"] == "2026-12-11"
    due = (await store.effect(f"{r}/due/2026-12-11")).effect.payload
    assert (due["to"], due["template"]) == (director, "reminder_due")
    overdue = (await store.effect(f"{r}/overdue/2026-12-15")).effect.payload
    assert (overdue["to"], overdue["template"], overdue["days_overdue"]) == (director, "reminder_overdue", 2)
    alert = (await store.effect(f"{r}/approval_overdue/2026-12-04")).effect.payload
    assert (alert["to"], alert["template"], alert["director"]) == ({"role": "COORDINATOR"}, "approval_overdue",
                                                                    DIRECTOR_DE)
    escalation = (await store.effect(f"{r}/escalation/2026-12-04")).effect.payload
    assert (escalation["to"], escalation["template"], escalation["days_overdue"]) == (
        {"role": "OCOIM_HEAD"}, "escalation", 3)
    assert (await store.effect(f"reminder/{n}/PRO-01/before/2026-12-17")).effect.payload["to"] == {
        "role": "COORDINATOR"}

    # The coordinator's digest, morning by morning.
    def numbers(day: int, key: str) -> list[tuple[str, str]]:
        return [(i["number"], i["step_id"]) for i in digests[date(2026, 12, day)][key]]

    assert set(digests) == {date(2026, 12, d) for d in (7, 10, 11, 14, 15, 16, 17, 18)}
    assert all(d["to"] == {"role": "COORDINATOR"} and d["template"] == "digest" for d in digests.values())
    assert numbers(7, "overdue") == [] and numbers(7, "due_soon") == []
    assert numbers(7, "awaiting_directors") == [(n, "PRE-14")]
    assert digests[date(2026, 12, 7)]["awaiting_directors"][0]["director"] == DIRECTOR_DE
    assert numbers(10, "due_soon") == [(n, "PRE-14")] and numbers(10, "overdue") == []
    assert numbers(11, "due_soon") == [(n, "PRE-14")]
    assert digests[date(2026, 12, 11)]["due_soon"][0]["status_label"] == "Vence hoy"
    assert digests[date(2026, 12, 10)]["failed_effects"] == {"count": 0, "ids": []}
    assert digests[date(2026, 12, 11)]["failed_effects"] == {"count": 1, "ids": [f"{n}/v1/0-notify"]}
    for day, late in ((14, 1), (15, 2), (16, 3)):
        assert numbers(day, "overdue") == [(n, "PRE-14")]
        assert digests[date(2026, 12, day)]["overdue"][0]["days_overdue"] == late
        assert numbers(day, "due_soon") == []
        assert numbers(day, "awaiting_directors") == [(n, "PRE-14")]
    assert numbers(17, "awaiting_directors") == [] and numbers(17, "overdue") == []
    assert numbers(17, "due_soon") == [(n, "PRO-01")]
    assert all(d["at_risk"] == [] for d in digests.values())  # delivery in March leaves room


async def test_running_again_the_same_morning_sends_nothing_more(store, directory):
    await drive(store, "2026-0001", "PRE-14")
    clock = FixedClock(morning(14))
    reminders = job(store, directory, clock)
    first = await reminders.run_once()
    clock.advance(hours=3)
    again = await reminders.run_once()
    assert len(first.added) == 3 and again.added == []
    assert {e.id for e in again.effects} == set(first.added)  # computed again, stored once


async def test_two_instances_at_once_send_each_reminder_once(tmp_path, directory):
    path = tmp_path / "shared.db"
    one, two = SqliteRequestStore(path), SqliteRequestStore(path)
    try:
        await drive(one, "2026-0001", "PRE-14")
        await drive(one, "2026-0002", "PRE-10")
        clock = FixedClock(morning(16))
        a, b = job(one, directory, clock), job(two, directory, clock)
        run_a, run_b = await asyncio.gather(a.run_once(), b.run_once())
        added = run_a.added + run_b.added
        assert len(added) == len(set(added))  # no id was stored by both
        assert set(added) == {e.id for e in run_a.effects} == {e.id for e in run_b.effects}
        ids = one.conn.execute("SELECT id, COUNT(*) FROM effects WHERE id LIKE 'reminder/%' OR id LIKE 'digest/%' "
                               "GROUP BY id").fetchall()
        assert ids and all(count == 1 for _, count in ids)
        assert "reminder/2026-0001/PRE-14/overdue/2026-12-16" in dict(ids)
    finally:
        await one.close()
        await two.close()


async def test_two_processes_racing_on_threads_store_each_reminder_once(tmp_path, directory):
    """Each job on its own thread, event loop and SQLite connection: a real race for the file's lock."""
    path = tmp_path / "shared.db"
    seed = SqliteRequestStore(path)
    for i in range(1, 6):
        await drive(seed, f"2026-{i:04d}", "PRE-14")
    clock = FixedClock(morning(16))

    def run_in_own_loop() -> list[str]:
        async def go():
            store = SqliteRequestStore(path)
            try:
                return (await job(store, directory, clock).run_once()).added
            finally:
                await store.close()
        return asyncio.run(go())

    results = await asyncio.gather(*(asyncio.to_thread(run_in_own_loop) for _ in range(4)))
    added = [i for r in results for i in r]
    assert len(added) == len(set(added)) == 5 * 3 + 1  # overdue, approval_overdue, escalation each; one digest
    assert len(reminder_ids(seed)) == 16
    await seed.close()


async def test_bot_down_three_days_sends_one_catch_up_not_three(store, directory):
    await drive(store, "2026-0001", "PRE-14")
    clock = FixedClock(morning(11))
    reminders = job(store, directory, clock)
    await reminders.run_once()  # Friday: due
    # Down Monday 14, Tuesday 15 and Wednesday 16; back on Thursday 17 at noon.
    clock.set(morning(17, hour=12))
    run = await reminders.run_once()
    r = "reminder/2026-0001/PRE-14"
    assert set(run.added) == {f"{r}/overdue/2026-12-17", f"{r}/approval_overdue/2026-12-04",
                              f"{r}/escalation/2026-12-04", "digest/2026-12-17"}
    overdue = [i for i in reminder_ids(store) if "/overdue/" in i]
    assert overdue == [f"{r}/overdue/2026-12-17"]
    assert (await store.effect(f"{r}/overdue/2026-12-17")).effect.payload["days_overdue"] == 4


async def test_an_adjustment_round_reopens_the_review_with_fresh_once_only_messages(store, directory):
    await drive(store, "2026-0001", "PRE-14")
    clock = FixedClock(morning(14))
    reminders = job(store, directory, clock)
    await reminders.run_once()
    request = await act(store, await store.get("2026-0001"), Action.REQUEST_CHANGES, morning(14, 10))
    request = await act(store, request, Action.COMPLETE, morning(14, 11))  # PRE-15 adjusted, back at PRE-14
    assert request.step_id == "PRE-14"
    # Opened Monday 14, due Thursday 17; overdue from Friday 18: a new visit, a new coordinator alert.
    clock.set(morning(18))
    run = await reminders.run_once()
    r = "reminder/2026-0001/PRE-14"
    assert {f"{r}/overdue/2026-12-18", f"{r}/approval_overdue/2026-12-14"} <= set(run.added)
    assert f"{r}/escalation/2026-12-14" not in run.added  # one day late, not three


async def test_a_snoozed_step_skips_its_reminder_for_the_day_but_not_the_coordinators(store, directory):
    await drive(store, "2026-0001", "PRE-14")
    clock = FixedClock(morning(14))
    reminders = job(store, directory, clock)
    await reminders.run_once()
    clock.set(morning(14, hour=9))
    director = (await directory.director_of("DE")).id
    assert await reminders.snooze("2026-0001", "PRE-14", director) == [date(2026, 12, 14), date(2026, 12, 15)]
    marker = await store.effect("reminder/2026-0001/PRE-14/snoozed/2026-12-15")
    assert marker.status == "done"  # never delivered by the dispatcher
    assert not [r for r in await store.due_effects(morning(20)) if "snoozed" in r.id]

    clock.set(morning(15))
    quiet = await reminders.run_once()
    assert quiet.added == ["digest/2026-12-15"]
    clock.set(morning(16))
    loud = await reminders.run_once()
    assert "reminder/2026-0001/PRE-14/overdue/2026-12-16" in loud.added
    assert "reminder/2026-0001/PRE-14/escalation/2026-12-04" in loud.added


async def test_only_the_person_in_charge_may_snooze(store, directory):
    from procedure.engine import NotAllowed

    await drive(store, "2026-0001", "PRE-14")
    reminders = job(store, directory, FixedClock(morning(14)))
    other_director = (await directory.director_of("DSI")).id
    with pytest.raises(NotAllowed):
        await reminders.snooze("2026-0001", "PRE-14", other_director)


async def test_the_digest_lists_requests_at_risk_of_missing_their_delivery_date(store, directory):
    tight = await drive(store, "2026-0001", "PRE-02", due=date(2026, 12, 31))
    roomy = await drive(store, "2026-0002", "PRE-02", due=date(2027, 6, 30))
    today = date(2026, 12, 7)
    assert at_risk(PROCEDURE, tight, today, DEADLINES) and not at_risk(PROCEDURE, roomy, today, DEADLINES)
    clock = FixedClock(morning(7))
    await job(store, directory, clock).run_once()
    digest = (await store.effect("digest/2026-12-07")).effect.payload
    assert [(i["number"], i["delivery_date"]) for i in digest["at_risk"]] == [("2026-0001", "2026-12-31")]


async def test_requests_on_hold_get_no_reminders(store, directory):
    request = await drive(store, "2026-0001", "PRE-14")
    from procedure.engine import Command
    from tests.driving import COORDINATOR

    outcome = apply(PROCEDURE, request, Command(Action.HOLD, request.version, reason="El área pidió esperar"),
                    COORDINATOR, NOW + timedelta(hours=1))
    await store.save(outcome.request, request.version, outcome.history, outcome.effects)
    run = await job(store, directory, FixedClock(morning(15))).run_once()
    assert run.added == ["digest/2026-12-15"]
    digest = (await store.effect("digest/2026-12-15")).effect.payload
    assert digest["overdue"] == [] and digest["awaiting_directors"] == []


async def test_the_digest_stays_small_however_many_requests_are_late(store, directory):
    """A SharePoint text column holds 63,999 characters: the digest keeps 20 requests per list and the totals."""
    import json

    from cards.reminders import digest_card

    request = await drive(store, "2026-0001", "PRE-14")
    digest = await job(store, directory, FixedClock(morning(14))).digest([request] * 3000, date(2026, 12, 14))
    assert len(json.dumps(digest.payload, ensure_ascii=False)) < 63_999
    assert digest.payload["totals"]["overdue"] == 3000 and len(digest.payload["overdue"]) == 20
    card = json.dumps(digest_card(digest.payload), ensure_ascii=False)
    assert "Actividades vencidas (3000)" in card and "… y 2992 más" in card
