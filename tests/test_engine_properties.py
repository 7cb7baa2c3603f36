"""Random sequences of actions by random people never break the procedure's rules."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings, strategies as st

from procedure.definition import PROCEDURE
from procedure.engine import Action, ActionRefused, Command, apply, may_act_on_step, open_actions
from procedure.request import Status
from procedure.roles import Role
from tests.driving import NOW, PEOPLE, classification, full_command, new_request, walk

ACTIONS = list(Action)
CLASSIFICATIONS = st.builds(
    classification,
    piece_type=st.sampled_from(["A", "B"]),
    app_pa=st.booleans(),
    internal=st.booleans(),
    services=st.sets(st.sampled_from(["animation", "filming", "editing"]), min_size=1).map(tuple),
    producer=st.booleans(),
)
MOVES = st.lists(
    st.tuples(st.sampled_from(PEOPLE), st.sampled_from(ACTIONS), st.booleans(), st.booleans()),
    min_size=1, max_size=120,
)


def _command(request, person, action, complete_it, stale, c):
    if action in (Action.COMPLETE, Action.APPROVE, Action.REQUEST_CHANGES) and complete_it:
        cmd = full_command(request, action, c)
    else:
        cmd = Command(action, request.version, request.step_id, observation="Observación",
                      reason="Motivo", assignee=person)
    return replace(cmd, expected_version=request.version - 1) if stale else cmd


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=CLASSIFICATIONS, moves=MOVES)
def test_random_actions_keep_the_rules(c, moves):
    request = new_request()
    title = request.title
    for person, action, complete_it, stale in moves:
        before = request
        allowed = action in open_actions(PROCEDURE, before, person)
        might_act = may_act_on_step(PROCEDURE, before, person)
        try:
            outcome = apply(PROCEDURE, before, _command(before, person, action, complete_it, stale, c), person, NOW)
        except ActionRefused:
            continue
        request = outcome.request
        # Only a permitted person moves a request, and never on an old version.
        assert allowed and not stale
        if before.step_id != request.step_id:
            assert might_act or Role.COORDINATOR in person.roles
        # One history entry per transition, two for a conformity; the version moves by one.
        expected = 2 if action is Action.APPROVE else 1
        assert len(outcome.history) == expected
        assert request.version == before.version + 1
        assert all(h.version == request.version for h in outcome.history)
        assert request.title == title
        if action is Action.APPROVE:
            assert request.rounds(before.step_id) == before.rounds(before.step_id) + 1

    # The end stays reachable from wherever the request is, unless it was cancelled.
    if request.status is Status.ON_HOLD:
        coordinator = next(p for p in PEOPLE if Role.COORDINATOR in p.roles)
        request = apply(PROCEDURE, request, Command(Action.RESUME, request.version), coordinator, NOW).request
    if request.status is Status.ACTIVE:
        finished = walk(request.classification or c, request=request).request
        assert finished.status is Status.DELIVERED and finished.title == title


@settings(max_examples=60, deadline=None)
@given(c=CLASSIFICATIONS, rounds=st.dictionaries(
    st.sampled_from(["PRE-10", "PRE-14", "PRO-07", "PRO-11", "POS-04"]), st.integers(0, 3)))
def test_every_path_ends_delivered_with_every_round_counted(c, rounds):
    w = walk(c, rounds)
    assert w.request.status is Status.DELIVERED
    for review in ("PRE-10", "PRE-14", "PRO-07", "PRO-11", "POS-04"):
        assert w.request.rounds(review) == rounds.get(review, 0) + 1
    assert len(w.history) == len(w.visited) + 5  # each of the five conformities adds a second entry
