"""The procedure definition: complete, faithful to the source, and refused when broken."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from procedure.definition import PROCEDURE
from procedure.model import END, Guard, Procedure, Route, StepKind
from procedure.validation import DefinitionError, validate

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "procedure" / "procedimiento-piezas-audiovisuales.txt"


def _with(step_id: str, **changes) -> Procedure:
    steps = tuple(replace(s, **changes) if s.id == step_id else s for s in PROCEDURE.steps)
    return Procedure(steps=steps, start=PROCEDURE.start)


def _problems(proc: Procedure) -> str:
    with pytest.raises(DefinitionError) as info:
        validate(proc)
    return "\n".join(info.value.problems)


def test_the_procedure_has_its_38_activities_in_order_and_the_short_flow_of_7_4():
    ids = [s.id for s in PROCEDURE.steps]
    expected = [f"PRE-{i:02d}" for i in range(1, 18)] + [f"PRO-{i:02d}" for i in range(1, 14)] + [
        f"POS-{i:02d}" for i in range(1, 9)
    ]
    assert ids == expected + ["TER-01", "TER-02", "TER-03"]
    assert PROCEDURE.starts == ("PRE-01", "TER-01")
    assert validate(PROCEDURE) is PROCEDURE


def test_step_names_are_the_procedures_own_words():
    source = " ".join(SOURCE.read_text(encoding="utf-8").split()) if SOURCE.exists() else None
    if source is None:
        pytest.skip("the procedure's text is not beside the repository")
    for step in PROCEDURE.steps:
        if not step.id.startswith("TER-"):  # 7.4 names no activities; ours are described, not quoted
            assert " ".join(step.name.split()) in source, step.id


def test_nine_decisions_are_branches_of_the_definition():
    deciding = {s.id for s in PROCEDURE.steps if not s.id.startswith("TER-") and s.kind is StepKind.REVIEW or (
        s.kind is not StepKind.REVIEW and any(r.when for r in s.routes) and s.decision)}
    assert deciding == {"PRE-01", "PRE-06", "PRE-10", "PRE-14", "PRE-16", "PRO-02", "PRO-07", "PRO-11", "POS-04"}
    assert [s.id for s in PROCEDURE.reviews] == ["PRE-10", "PRE-14", "PRO-07", "PRO-11", "POS-04", "TER-01"]
    for review in PROCEDURE.reviews:
        assert PROCEDURE[review.conformity_step].kind is StepKind.CONFORMITY
        assert review.adjust_step in [r.to for r in PROCEDURE[review.adjust_step].routes] or \
            review.id in [r.to for r in PROCEDURE[review.adjust_step].routes]


def test_resolutions_of_domain_md_are_encoded():
    assert PROCEDURE["PRE-05"].routes == (Route("PRE-10"),)  # res. 1: A joins B at PRE-10
    assert PROCEDURE["PRE-17"].routes == (Route("PRO-01"),)  # res. 4
    assert PROCEDURE["POS-05"].routes == (Route("POS-04"),)  # res. 6: the "Actividad 05" typo
    assert PROCEDURE["PRE-02"].internal_audience_role == "COMMS"  # res. 2


def test_unknown_role_stops_start_up_naming_it():
    text = _problems(_with("PRE-04", roles=("ILLUSTRATOR",)))
    assert "PRE-04" in text and "ILLUSTRATOR" in text and "unknown role" in text


def test_unknown_recipient_is_refused():
    step = PROCEDURE["PRE-01"]
    text = _problems(_with("PRE-01", output=replace(step.output, to=("PRENSA",))))
    assert "PRE-01" in text and "PRENSA" in text


def test_step_nobody_can_reach_is_reported():
    # PRE-17 becomes unreachable when PRE-16 always goes to PRO-01.
    text = _problems(_with("PRE-16", routes=(Route("PRO-01"),)))
    assert "PRE-17: no route leads to it" in text


def test_step_from_which_the_end_cannot_be_reached_is_reported():
    # POS-08 routing back to POS-07 forms a loop with no exit towards the end.
    text = _problems(_with("POS-08", routes=(Route("POS-07"),)))
    assert "Loop POS-07 → POS-08 has no exit" in text


def test_dead_end_outside_a_loop_is_reported():
    text = _problems(_with("POS-08", routes=(Route("POS-09"),)))
    assert "POS-08: routes to 'POS-09', which is not a step" in text


def test_review_loop_with_no_exit_is_reported():
    # A conformity that sends the piece back to its adjustments: the review loop is never left.
    text = _problems(_with("PRO-09", routes=(Route("PRO-08"),)))
    assert "Loop PRO-07 → PRO-08 → PRO-09 has no exit" in text


def test_decision_that_does_not_cover_every_case_is_reported():
    text = _problems(_with("PRE-06", routes=(Route("PRE-07", Guard("investment_project", True)),)))
    assert "PRE-06: its decision does not cover every case" in text


def test_route_on_a_field_the_request_does_not_have_is_reported():
    text = _problems(_with("PRE-06", routes=(Route("PRE-07", Guard("budget", True)), Route("PRE-08"))))
    assert "'budget'" in text


def test_every_problem_is_listed_at_once():
    broken = _with("PRE-04", roles=("NOBODY",))
    broken = Procedure(steps=tuple(replace(s, roles=("GHOST",)) if s.id == "PRE-08" else s for s in broken.steps),
                       start="PRE-01")
    problems = _problems(broken)
    assert "NOBODY" in problems and "GHOST" in problems


def test_end_is_reached_from_the_last_step_of_each_flow():
    assert [s.id for s in PROCEDURE.steps if any(r.to == END for r in s.routes)] == ["POS-08", "TER-03"]


def test_an_entry_point_nothing_reaches_from_is_reported():
    broken = Procedure(steps=PROCEDURE.steps, start="PRE-01", entries=("TER-09",))
    assert "The start step 'TER-09' is not defined." in _problems(broken)
    without = Procedure(steps=PROCEDURE.steps, start="PRE-01")
    assert "TER-01: no route leads to it from PRE-01" in _problems(without)
