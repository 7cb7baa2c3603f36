"""A request driven from PRE-01 to POS-08 through the services on SQLite, with its effects delivered."""

from __future__ import annotations

import asyncio
import email
import json
from datetime import date
from pathlib import Path

import pytest
from icalendar import Calendar as ICal

from config.deadlines import load_deadlines
from local.calendar import IcsCalendar
from local.clock import FixedClock
from local.directory import YamlDirectory
from local.files import FolderFileStore
from local.mailer import EmlMailer
from local.notifier import LogNotifier
from local.sqlite_store import SqliteRequestStore
from procedure.definition import PROCEDURE
from procedure.engine import Action, Intake, StaleVersion
from procedure.model import StepKind
from procedure.request import Status
from services.dispatcher import EffectDispatcher
from services.requests import RequestService
from tests.driving import NOW, classification, full_command

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = ROOT / "config" / "people.example.yaml"


class FlakyMailer:
    """Fails the first `failures` sends, then delegates: a mail server having a bad minute."""

    def __init__(self, inner, failures: int):
        self.inner, self.failures, self.calls = inner, failures, 0

    async def send(self, message):
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("servidor de correo no disponible")
        return await self.inner.send(message)


@pytest.fixture
async def world(tmp_path):
    store = SqliteRequestStore(tmp_path / "claqueta.db")
    directory = YamlDirectory(PEOPLE)
    clock = FixedClock(NOW)
    lead = load_deadlines(ROOT / "config" / "deadlines.yaml").lead_time
    service = RequestService(PROCEDURE, store, directory, clock, lead)
    notes = LogNotifier(tmp_path / "avisos.jsonl")
    mailer = FlakyMailer(EmlMailer(tmp_path / "correos"), failures=0)
    dispatcher = EffectDispatcher(PROCEDURE, store, directory, clock, notifier=notes, mailer=mailer,
                                  calendar=IcsCalendar(tmp_path / "reuniones"),
                                  files=FolderFileStore(tmp_path / "archivos"), base_delay=0.0)
    yield dict(store=store, directory=directory, clock=clock, service=service, dispatcher=dispatcher,
               mailer=mailer, path=tmp_path)
    await store.close()


async def _someone_who_may(world, request, action):
    from procedure.engine import open_actions

    people = []
    for role in ("COORDINATOR", "PRESS", "COMMS", "DESIGNER", "OCOIM_HEAD", "ADMIN_ANALYST", "REQUESTER"):
        people += await world["directory"].people_with_role(role)
    director = await world["directory"].director_of(request.area)
    people.append(director)
    for person in people:
        if person and action in open_actions(PROCEDURE, request, person):
            return person
    raise AssertionError(f"nadie puede {action} en {request.step_id}")


async def _file(world, title="Video institucional 2027", due=date(2027, 3, 1)):
    requester = (await world["directory"].people_with_role("REQUESTER"))[0]
    intake = Intake(title=title, area=requester.area or "DE", due_date=due, purpose="Portal institucional",
                    links=("https://www.proinversion.gob.pe",))
    return await world["service"].file(intake, requester)


async def test_a_request_runs_from_pre01_to_pos08_with_every_output_delivered(world):
    service, dispatcher, store = world["service"], world["dispatcher"], world["store"]
    outcome = await _file(world)
    number = outcome.request.number
    assert number == "2026-0001"
    c = classification("A", services=("animation", "filming", "editing"), producer=True)
    rounds = {"PRE-10": 1, "PRO-11": 1}
    for _ in range(80):
        request = await service.get(number)
        if request.step_id == "END":
            break
        step = PROCEDURE[request.step_id]
        if step.kind is StepKind.REVIEW:
            action = Action.REQUEST_CHANGES if request.rounds(step.id) < rounds.get(step.id, 0) else Action.APPROVE
        else:
            action = Action.COMPLETE
        actor = await _someone_who_may(world, request, action)
        await service.act(number, full_command(request, action, c), actor)
        while await dispatcher.run_once():
            pass

    final = await service.get(number)
    assert final.status is Status.DELIVERED and final.archive_path == "Archivo/2026/12/Video institucional 2027/"
    history = await store.history(number)
    steps = [h.step_id for h in history]
    assert steps[:2] == ["PRE-01", "PRE-01"] and steps[-1] == "POS-08"
    assert {"PRE-17", "PRO-03", "PRO-04", "PRO-05", "PRE-11", "PRO-12"} <= set(steps)
    assert await store.failed_effects() == []

    # Every email is a real message with the request number and title in the subject.
    emls = sorted((world["path"] / "correos").glob("*.eml"))
    assert emls
    for path in emls:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert f"[Solicitud {number}] Video institucional 2027" in message["Subject"]
    # The four review meetings ("Correo electrónico (agenda)") became calendar invitations.
    icss = list((world["path"] / "reuniones").glob("*.ics"))
    summaries = sorted(str(ICal.from_ical(p.read_bytes()).walk("VEVENT")[0]["SUMMARY"]) for p in icss)
    assert [s.split(" — ")[1][:6] for s in summaries] == ["PRE-05", "PRE-13", "PRO-10"]
    # Each step reached its people in Teams (here: the notification log).
    notes = [json.loads(line) for line in (world["path"] / "avisos.jsonl").read_text().splitlines()]
    opened = {n["message"]["step_id"] for n in notes if n["message"].get("template") == "step_opened"}
    assert {"PRE-01", "PRE-14", "PRO-11", "POS-04", "POS-08"} <= opened
    milestones = [n["message"]["step_id"] for n in notes if n["message"].get("template") == "milestone"]
    assert milestones == ["PRE-16", "PRO-10", "POS-08"]


async def test_fifty_concurrent_conflicting_actions_apply_exactly_once(world):
    service, store = world["service"], world["store"]
    number = (await _file(world)).request.number
    request = await service.get(number)
    coordinator = (await world["directory"].people_with_role("COORDINATOR"))[0]
    commands = [full_command(request, Action.COMPLETE, classification("A" if i % 2 else "B")) for i in range(50)]
    results = await asyncio.gather(*(service.act(number, cmd, coordinator) for cmd in commands),
                                   return_exceptions=True)
    applied = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, StaleVersion)]
    assert len(applied) == 1 and len(refused) == 49
    history = await store.history(number)
    assert [h.step_id for h in history] == ["PRE-01", "PRE-01"]
    assert (await service.get(number)).version == 2


async def test_failed_delivery_is_retried_and_a_hopeless_one_stays_visible(world):
    service, dispatcher, store, clock = world["service"], world["dispatcher"], world["store"], world["clock"]
    world["mailer"].failures = 2
    number = (await _file(world)).request.number
    request = await service.get(number)
    coordinator = (await world["directory"].people_with_role("COORDINATOR"))[0]
    await service.act(number, full_command(request, Action.COMPLETE, classification("B")), coordinator)
    for _ in range(4):
        await dispatcher.run_once()
        clock.advance(minutes=30)
    assert world["mailer"].calls == 3  # two failures, then delivered once
    assert len(list((world["path"] / "correos").glob("*.eml"))) == 1

    world["mailer"].failures = 10 ** 6
    second = (await _file(world, title="Spot de la Semana de la Inversión")).request
    await service.act(second.number, full_command(second, Action.COMPLETE, classification("B")), coordinator)
    for _ in range(10):
        await dispatcher.run_once()
        clock.advance(hours=2)
    failed = await store.failed_effects()
    assert [f.effect.request_number for f in failed] == [second.number]
    assert failed[0].attempts == 6 and "servidor de correo no disponible" in failed[0].last_error


async def test_a_restarted_dispatcher_resumes_without_delivering_twice(world, tmp_path):
    service, store = world["service"], world["store"]
    number = (await _file(world)).request.number
    request = await service.get(number)
    coordinator = (await world["directory"].people_with_role("COORDINATOR"))[0]
    await service.act(number, full_command(request, Action.COMPLETE, classification("B")), coordinator)
    delivered_before = await world["dispatcher"].run_once(limit=1)
    await store.close()

    reopened = SqliteRequestStore(tmp_path / "claqueta.db")
    again = EffectDispatcher(PROCEDURE, reopened, world["directory"], world["clock"],
                             notifier=LogNotifier(tmp_path / "avisos.jsonl"), mailer=EmlMailer(tmp_path / "correos"),
                             calendar=IcsCalendar(tmp_path / "reuniones"), files=FolderFileStore(tmp_path / "archivos"))
    while await again.run_once():
        pass
    notes = [json.loads(line) for line in (tmp_path / "avisos.jsonl").read_text().splitlines()]
    ids = [n["message"]["effect_id"] for n in notes]
    assert delivered_before == 1 and len(ids) == len(set(ids)) == 2  # PRE-01 to the coordinator, PRE-06 to comms
    world["store"] = reopened
