"""The engine runs every path of the procedure and enforces who may do what, with what."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from itertools import combinations

import pytest

from procedure.definition import PROCEDURE
from procedure.engine import (
    Action,
    Command,
    DeliverableInput,
    Intake,
    IntakeError,
    InvalidAction,
    NotAllowed,
    StaleVersion,
    apply,
    file_request,
    open_actions,
)
from procedure.model import Deliverable
from procedure.request import EffectKind, Status
from tests.driving import (
    AREAS,
    COMMS,
    COORDINATOR,
    DESIGNER,
    DIRECTOR_DE,
    DIRECTOR_DSI,
    LEAD_TIMES,
    NOW,
    OUTSIDER,
    PRESS,
    REQUESTER,
    classification,
    full_command,
    new_request,
    walk,
)

REVIEWS = ["PRE-10", "PRE-14", "PRO-07", "PRO-11", "POS-04"]
TAIL_A = ["PRE-02", "PRE-03", "PRE-04", "PRE-05", "PRE-10", "PRE-13", "PRE-14"]
POST = ["POS-01", "POS-02", "POS-03", "POS-04", "POS-07", "POS-08"]


def test_type_a_runs_its_own_branch_and_joins_at_the_review():
    w = walk(classification("A", services=("animation", "editing")))
    assert w.visited == ["PRE-01", *TAIL_A, "PRO-01", "PRO-02", "PRO-03", "PRO-06", "PRO-07", "PRO-10",
                         "PRO-11", *POST]
    assert w.request.status is Status.DELIVERED


@pytest.mark.parametrize("app_pa, expected", [
    (True, ["PRE-06", "PRE-07", "PRE-08", "PRE-09"]),
    (False, ["PRE-06", "PRE-08", "PRE-09"]),
])
def test_type_b_asks_for_project_inputs_only_for_app_pa(app_pa, expected):
    w = walk(classification("B", app_pa=app_pa, services=("filming", "editing")))
    assert w.visited[1:1 + len(expected)] == expected
    assert w.visited[1 + len(expected)] == "PRE-10"


SERVICE_SETS = [set(c) for n in (1, 2, 3) for c in combinations(["animation", "filming", "editing"], n)]


@pytest.mark.parametrize("services", SERVICE_SETS, ids=lambda s: "+".join(sorted(s)))
def test_production_runs_the_steps_of_each_service(services):
    w = walk(classification("B", services=tuple(services)))
    production = [s for s in w.visited if s.startswith("PRO-")]
    expected = ["PRO-01", "PRO-02"]
    if "animation" in services:
        expected.append("PRO-03")
    if "filming" in services:
        expected += ["PRO-04", "PRO-05"]
    expected += ["PRO-06", "PRO-07", "PRO-10", "PRO-11"]
    assert production == expected


@pytest.mark.parametrize("producer", [True, False])
def test_outside_producer_adds_the_contracting_step(producer):
    w = walk(classification("A", producer=producer))
    after_conformity = w.visited[w.visited.index("PRE-14") + 1]
    assert after_conformity == ("PRE-17" if producer else "PRO-01")
    assert ("PRE-17" in w.visited) is producer


@pytest.mark.parametrize("review", REVIEWS)
@pytest.mark.parametrize("loops", [0, 1, 3])
def test_each_review_loop_taken_zero_one_and_three_times(review, loops):
    w = walk(classification("A"), {review: loops})
    adjust = PROCEDURE[review].adjust_step
    assert w.visited.count(review) == loops + 1
    assert w.visited.count(adjust) == loops
    assert w.request.rounds(review) == loops + 1
    assert len([o for o in w.request.observations if o.step_id == review]) == loops
    assert w.request.status is Status.DELIVERED


def test_internal_animated_video_goes_to_the_comms_specialist():
    w = walk(classification("A", internal=True), {"PRE-10": 1})
    writers = {h.step_id: h.actor_id for h in w.history if h.step_id in ("PRE-02", "PRE-11")}
    assert writers == {"PRE-02": COMMS.id, "PRE-11": COMMS.id}


def test_conformity_records_the_review_and_the_conformity_as_two_entries():
    w = walk(classification("A"))
    for review in REVIEWS:
        conformity = PROCEDURE[review].conformity_step
        entries = [h for h in w.history if h.step_id in (review, conformity)]
        assert [(h.step_id, h.action) for h in entries] == [(review, "review_approved"), (conformity, "conformity")]
        assert entries[0].version == entries[1].version and (entries[0].seq, entries[1].seq) == (0, 1)


def test_history_names_who_did_what_in_spanish():
    w = walk(classification("A"))
    first = w.history[0]
    assert first.summary == "Carla Quispe completó PRE-01 «Comprender el requerimiento de la pieza audiovisual»."
    approvals = [h.summary for h in w.history if h.action == "conformity" and h.step_id == "PRE-16"]
    assert approvals == ["Dora Díaz dio conformidad: PRE-16 «Dar conformidad al guion y/o storyboard»."]


# ── Who may act ─────────────────────────────────────────────────────────────────────────────


def _at(step_id: str, c=None):
    w = walk(c or classification("A"))
    # Re-walk until the step: cheaper to replay the recorded path.
    r = new_request()
    for visited in w.visited:
        if r.step_id == step_id:
            return r
        from tests.driving import who_can
        step = PROCEDURE[r.step_id]
        action = Action.APPROVE if step.kind.value == "review" else Action.COMPLETE
        r = apply(PROCEDURE, r, full_command(r, action, c or classification("A")), who_can(r, action), NOW).request
    assert r.step_id == step_id
    return r


def test_only_the_steps_role_may_act():
    r = _at("PRE-04")
    assert open_actions(PROCEDURE, r, DESIGNER)[:1] == [Action.COMPLETE]
    for person in (PRESS, COMMS, REQUESTER, DIRECTOR_DE):
        with pytest.raises(NotAllowed) as info:
            apply(PROCEDURE, r, full_command(r, Action.COMPLETE), person, NOW)
        assert "Diseñador" in info.value.message


def test_only_the_director_of_the_requesting_area_gives_conformity():
    r = _at("PRE-14")
    with pytest.raises(NotAllowed) as info:
        apply(PROCEDURE, r, full_command(r, Action.APPROVE), DIRECTOR_DSI, NOW)
    assert info.value.message == "Solo el Director(a) del área DE puede decidir en PRE-14."
    assert apply(PROCEDURE, r, full_command(r, Action.APPROVE), DIRECTOR_DE, NOW).request.step_id == "PRO-01"


def test_area_members_may_add_observations_but_not_decide():
    r = _at("PRE-14")
    assert open_actions(PROCEDURE, r, REQUESTER) == [Action.OBSERVE, Action.EDIT]
    out = apply(PROCEDURE, r, Command(Action.OBSERVE, r.version, "PRE-14", observation="Falta el logo"), REQUESTER, NOW)
    assert out.request.step_id == "PRE-14" and out.request.observations[-1].text == "Falta el logo"
    assert out.effects[0].payload["to"] == {"role": "DIRECTOR", "area": "DE"}
    assert open_actions(PROCEDURE, r, OUTSIDER) == []


def test_coordinator_reassigns_a_step_to_another_person_of_the_role():
    r = _at("PRE-02")
    other_press = replace(PRESS, id="press2", name="Paula Soto")
    out = apply(PROCEDURE, r, Command(Action.REASSIGN, r.version, assignee=other_press, reason="Vacaciones"),
                COORDINATOR, NOW)
    r2 = out.request
    assert r2.assignees == {"PRESS": "press2"} and r2.step_id == "PRE-02"
    assert out.effects[0].payload["to"] == {"person": "press2"}
    with pytest.raises(NotAllowed):
        apply(PROCEDURE, r2, full_command(r2, Action.COMPLETE), PRESS, NOW)
    assert apply(PROCEDURE, r2, full_command(r2, Action.COMPLETE), other_press, NOW).request.step_id == "PRE-03"
    with pytest.raises(InvalidAction, match="no tiene el rol"):
        apply(PROCEDURE, r, Command(Action.REASSIGN, r.version, assignee=DESIGNER), COORDINATOR, NOW)


def test_only_the_coordinator_holds_resumes_and_cancels_with_a_reason():
    r = _at("PRE-03")
    with pytest.raises(NotAllowed, match="Solo el Coordinador"):
        apply(PROCEDURE, r, Command(Action.HOLD, r.version, reason="x"), PRESS, NOW)
    with pytest.raises(InvalidAction, match="motivo"):
        apply(PROCEDURE, r, Command(Action.HOLD, r.version), COORDINATOR, NOW)
    held = apply(PROCEDURE, r, Command(Action.HOLD, r.version, reason="Área reprograma"), COORDINATOR, NOW).request
    assert held.status is Status.ON_HOLD
    with pytest.raises(NotAllowed, match="en espera"):
        apply(PROCEDURE, held, full_command(held, Action.COMPLETE), COMMS, NOW)
    resumed = apply(PROCEDURE, held, Command(Action.RESUME, held.version), COORDINATOR, NOW).request
    assert resumed.status is Status.ACTIVE and resumed.step_id == "PRE-03"
    cancelled = apply(PROCEDURE, resumed, Command(Action.CANCEL, resumed.version, reason="Ya no se requiere"),
                      COORDINATOR, NOW).request
    assert cancelled.status is Status.CANCELLED and open_actions(PROCEDURE, cancelled, COORDINATOR) == []


# ── What an action needs ────────────────────────────────────────────────────────────────────


def test_action_built_on_an_older_version_is_refused_and_changes_nothing():
    r = _at("PRE-03")
    old = full_command(r, Action.COMPLETE)
    moved = apply(PROCEDURE, r, old, COMMS, NOW).request
    with pytest.raises(StaleVersion):
        apply(PROCEDURE, moved, old, DESIGNER, NOW)
    assert moved.step_id == "PRE-04"


def test_requesting_changes_needs_a_written_observation():
    r = _at("PRE-10")
    with pytest.raises(InvalidAction, match="escriba la observación"):
        apply(PROCEDURE, r, Command(Action.REQUEST_CHANGES, r.version, "PRE-10", observation="   "), PRESS, NOW)


@pytest.mark.parametrize("step_id, missing", [
    ("PRE-02", "Guion"), ("PRE-04", "Storyboard"), ("PRO-06", "Versión preliminar del video"),
    ("PRO-10", "Primera versión del video"), ("POS-02", "Piezas gráficas"), ("POS-03", "Versión final del video"),
    ("POS-08", "Canales de difusión"),
])
def test_a_step_with_a_deliverable_cannot_complete_without_it(step_id, missing):
    r = _at(step_id)
    cmd = replace(full_command(r, Action.COMPLETE), deliverables=())
    actor = next(p for p in (PRESS, COMMS, DESIGNER, COORDINATOR) if Action.COMPLETE in open_actions(PROCEDURE, r, p))
    with pytest.raises(InvalidAction) as info:
        apply(PROCEDURE, r, cmd, actor, NOW)
    assert missing in info.value.message


def test_a_deliverable_must_be_a_link_or_an_uploaded_file():
    r = _at("PRE-04")
    bad = Command(Action.COMPLETE, r.version, "PRE-04",
                  deliverables=(DeliverableInput(Deliverable.STORYBOARD, "en mi escritorio"),))
    with pytest.raises(InvalidAction, match="enlace válido"):
        apply(PROCEDURE, r, bad, DESIGNER, NOW)
    uploaded = Command(Action.COMPLETE, r.version, "PRE-04",
                       deliverables=(DeliverableInput(Deliverable.STORYBOARD, "https://smba.trafficmanager.net/f/1",
                                                      "storyboard.pdf", uploaded=True),))
    out = apply(PROCEDURE, r, uploaded, DESIGNER, NOW)
    assert [e.kind for e in out.effects].count(EffectKind.UPLOAD) == 1


def test_adjustments_accept_script_or_storyboard():
    r = apply(PROCEDURE, _at("PRE-10"), full_command(_at("PRE-10"), Action.REQUEST_CHANGES), PRESS, NOW).request
    only_script = Command(Action.COMPLETE, r.version, "PRE-11",
                          deliverables=(DeliverableInput(Deliverable.SCRIPT, "https://x.example/guion-v2"),))
    out = apply(PROCEDURE, r, only_script, PRESS, NOW)
    assert out.request.step_id == "PRE-10" and out.request.deliverables[-1].round == 1


def test_pre01_needs_the_classification_and_a_project_for_app_pa():
    r = new_request()
    with pytest.raises(InvalidAction, match="clasificación"):
        apply(PROCEDURE, r, Command(Action.COMPLETE, r.version, "PRE-01"), COORDINATOR, NOW)
    c = classification("B", app_pa=True).model_copy(update={"project_name": ""})
    with pytest.raises(InvalidAction, match="APP o PA"):
        apply(PROCEDURE, r, Command(Action.COMPLETE, r.version, "PRE-01", classification=c), COORDINATOR, NOW)


def test_meetings_steps_need_a_date_and_produce_a_meeting():
    r = _at("PRE-09", classification("B"))
    with pytest.raises(InvalidAction, match="reunión"):
        apply(PROCEDURE, r, Command(Action.COMPLETE, r.version, "PRE-09"), COORDINATOR, NOW)
    out = apply(PROCEDURE, r, full_command(r, Action.COMPLETE), COORDINATOR, NOW)
    meeting = [e for e in out.effects if e.kind is EffectKind.MEETING][0]
    assert meeting.payload["recipients"] == ["OCOIM_TEAM"] and meeting.id.startswith(r.number)


def test_effect_ids_are_unique_and_stable_per_transition():
    w = walk(classification("A"), {"PRE-10": 3})
    ids = [e.id for e in w.effects]
    assert len(ids) == len(set(ids))


# ── The request ─────────────────────────────────────────────────────────────────────────────


def test_title_can_never_change():
    r = new_request()
    with pytest.raises(InvalidAction) as info:
        apply(PROCEDURE, r, Command(Action.EDIT, r.version, changes={"title": "Otro título"}), REQUESTER, NOW)
    assert "El título de la solicitud no puede cambiar" in info.value.message
    edited = apply(PROCEDURE, r, Command(Action.EDIT, r.version, changes={"purpose": "Redes sociales"}),
                   REQUESTER, NOW).request
    assert edited.title == r.title and edited.purpose == "Redes sociales"


def test_a_date_in_the_past_is_refused_with_its_field_named():
    with pytest.raises(IntakeError) as info:
        file_request(PROCEDURE, Intake("Video", "DE", NOW.date() - timedelta(days=1)), "2026-0002", REQUESTER,
                     NOW, AREAS, LEAD_TIMES)
    assert info.value.errors == {"due_date": "La fecha de entrega no puede estar en el pasado."}


def test_missing_fields_are_each_explained():
    with pytest.raises(IntakeError) as info:
        file_request(PROCEDURE, Intake("  ", "XYZ", None, links=("ftp://a",)), "2026-0002", REQUESTER, NOW,
                     AREAS, LEAD_TIMES)
    assert set(info.value.errors) == {"title", "area", "due_date", "links"}


def test_a_close_date_is_accepted_with_a_warning_stricter_for_animated_videos():
    soon = date(2026, 12, 28)  # 13 working days after 4 Dec 2026 (8 and 9 Dec are holidays)
    animated = file_request(PROCEDURE, Intake("Video", "DE", soon, expected_type="A"), "2026-0002", REQUESTER,
                            NOW, AREAS, LEAD_TIMES)
    filmed = file_request(PROCEDURE, Intake("Video", "DE", soon, expected_type="B"), "2026-0003", REQUESTER,
                          NOW, AREAS, LEAD_TIMES)
    assert animated.warnings and "13 días hábiles" in animated.warnings[0] and "al menos 25" in animated.warnings[0]
    assert filmed.warnings == []
    notify = [e for e in animated.effects if e.payload.get("warning")]
    assert [e.payload["to"] for e in notify] == [{"role": "COORDINATOR"}]  # the requester reads it in the reply


def test_classifying_as_animated_warns_the_coordinator_when_time_is_short():
    r = new_request(due=date(2026, 12, 28))
    out = apply(PROCEDURE, r, full_command(r, Action.COMPLETE, classification("A")), COORDINATOR, NOW, LEAD_TIMES)
    assert out.warnings and "video animado" in out.warnings[0]


# ── 7.4: pieces made by the area's own contractor ───────────────────────────────────────────


def test_a_third_party_piece_is_reviewed_adjusted_by_its_area_and_given_conformity():
    intake = Intake("Spot Línea 2", "DE", date(2026, 12, 18), piece_url="https://youtu.be/spot-l2",
                    producer="Productora Andina")
    filed = file_request(PROCEDURE, intake, "2026-0040", REQUESTER, NOW, AREAS, LEAD_TIMES, start="TER-01")
    r = filed.request
    assert r.step_id == "TER-01" and r.third_party and r.latest(Deliverable.FINAL_VERSION).ref == "https://youtu.be/spot-l2"
    assert filed.warnings == []  # no production lead time applies to a piece that already exists
    assert filed.history[0].summary.endswith("elaborada por Productora Andina, para la revisión de OCOIM (7.4).")
    assert filed.effects[0].payload["to"] == {"role": "COORDINATOR"}

    with pytest.raises(NotAllowed):  # OCOIM reviews, not the area
        apply(PROCEDURE, r, full_command(r, Action.APPROVE), REQUESTER, NOW)
    r = apply(PROCEDURE, r, full_command(r, Action.REQUEST_CHANGES), COORDINATOR, NOW).request
    assert r.step_id == "TER-02"
    # The adjustment is the area's: the requester (or someone of the area), never another area.
    assert open_actions(PROCEDURE, r, OUTSIDER) == []
    assert Action.COMPLETE not in open_actions(PROCEDURE, r, PRESS)
    adjusted = apply(PROCEDURE, r, full_command(r, Action.COMPLETE), REQUESTER, NOW)
    assert adjusted.request.step_id == "TER-01" and adjusted.effects[-1].payload["to"] == {"role": "COORDINATOR"}
    done = apply(PROCEDURE, adjusted.request, full_command(adjusted.request, Action.APPROVE), COORDINATOR, NOW)
    assert done.request.status is Status.DELIVERED and done.request.rounds("TER-01") == 2
    assert done.request.status_label == "Con conformidad de OCOIM"  # OCOIM did not deliver it: it approved it
    assert [(h.step_id, h.action) for h in done.history] == [("TER-01", "review_approved"), ("TER-03", "conformity")]


def test_a_third_party_piece_needs_its_link():
    with pytest.raises(IntakeError) as info:
        file_request(PROCEDURE, Intake("Spot", "DE", date(2026, 12, 18)), "2026-0041", REQUESTER, NOW, AREAS,
                     LEAD_TIMES, start="TER-01")
    assert info.value.errors == {"piece_url": "Indique el enlace a la pieza audiovisual (https://…)."}
