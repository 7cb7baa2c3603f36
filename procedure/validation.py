"""Checks a procedure definition when it is loaded and says, in plain words, what to fix."""

from __future__ import annotations

from collections import defaultdict

from procedure.model import END, GUARD_DOMAINS, Procedure, StepKind
from procedure.roles import Audience, Role


class DefinitionError(ValueError):
    """The procedure definition cannot run; `problems` lists every reason, each saying what to fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("The procedure definition cannot run:\n- " + "\n- ".join(problems))


KNOWN_ROLES = set(Role.__members__)
KNOWN_RECIPIENTS = KNOWN_ROLES | set(Audience.__members__)


def validate(proc: Procedure) -> Procedure:
    """Return `proc` unchanged if it can run; raise DefinitionError listing every problem otherwise."""
    problems: list[str] = []
    ids = [s.id for s in proc.steps]
    seen: set[str] = set()
    for step_id in ids:
        if step_id in seen:
            problems.append(f"{step_id}: the id is used by two steps; give each step its own id.")
        seen.add(step_id)
    for start in proc.starts:
        if start not in proc:
            problems.append(f"The start step {start!r} is not defined.")

    for step in proc.steps:
        for role in (*step.roles, *step.observers, *filter(None, [step.internal_audience_role])):
            if role not in KNOWN_ROLES:
                problems.append(
                    f"{step.id}: unknown role {role!r}; use one of {', '.join(sorted(KNOWN_ROLES))}."
                )
        if not step.roles:
            problems.append(f"{step.id}: nobody is responsible; give it at least one role.")
        for to in step.output.to:
            if to not in KNOWN_RECIPIENTS:
                problems.append(f"{step.id}: unknown recipient {to!r} of its output.")
        if not step.routes:
            problems.append(f"{step.id}: it has no next step; add a route (or a route to END).")
        for route in step.routes:
            if route.to != END and route.to not in proc:
                problems.append(f"{step.id}: routes to {route.to!r}, which is not a step.")
            if route.when and route.when.field not in GUARD_DOMAINS:
                problems.append(
                    f"{step.id}: a route tests {route.when.field!r}, which the request does not have; "
                    f"use one of {', '.join(sorted(GUARD_DOMAINS))}."
                )
        problems += _check_decision(proc, step.id)
        if step.deliverable_rule not in ("all", "any"):
            problems.append(f"{step.id}: deliverable_rule must be 'all' or 'any'.")

    if problems:  # the graph checks below assume every route names a real step
        raise DefinitionError(problems)

    reachable: set[str] = set()
    for start in proc.starts:
        reachable |= _reach(start, lambda s: proc.successors(s))
    for step in proc.steps:
        if step.id not in reachable:
            problems.append(f"{step.id}: no route leads to it from {' or '.join(proc.starts)}; route a step to it "
                            "or remove it.")

    predecessors: dict[str, list[str]] = defaultdict(list)
    for step in proc.steps:
        for to in proc.successors(step.id):
            predecessors[to].append(step.id)
    finishing = _reach(END, lambda s: predecessors[s])
    trapped = {s.id for s in proc.steps if s.id not in finishing}
    for loop in _closed_loops(proc, trapped):
        problems.append(
            f"Loop {' → '.join(loop)} has no exit: no route leaves it, so a request that enters it can "
            "never finish; give one of its steps a route out."
        )
    in_loops = {s for loop in _closed_loops(proc, trapped) for s in loop}
    for step_id in sorted(trapped - in_loops):
        problems.append(f"{step_id}: the end cannot be reached from it; give it a route towards {END}.")

    if problems:
        raise DefinitionError(problems)
    return proc


def _check_decision(proc: Procedure, step_id: str) -> list[str]:
    step = proc[step_id]
    guarded = [r for r in step.routes if r.when]
    problems = []
    if step.kind is StepKind.REVIEW:
        verdicts = {r.when.equals for r in guarded if r.when.field == "verdict"}
        if verdicts != {"approved", "changes"}:
            problems.append(f"{step_id}: a review needs one route for 'approved' and one for 'changes'.")
        elif proc.by_id.get(step.conformity_step) and proc[step.conformity_step].kind is not StepKind.CONFORMITY:
            problems.append(f"{step_id}: its 'approved' route must lead to a 'Dar conformidad' step.")
        return problems
    if any(r.when and r.when.field == "verdict" for r in step.routes):
        problems.append(f"{step_id}: only a review can route on a verdict.")
    if guarded and all(r.when for r in step.routes):
        fields = {r.when.field for r in guarded}
        values = {r.when.equals for r in guarded}
        if len(fields) != 1 or values != set(GUARD_DOMAINS.get(next(iter(fields)), ())):
            problems.append(
                f"{step_id}: its decision does not cover every case; add a default route (one with no condition)."
            )
    if sum(1 for r in step.routes if not r.when) > 1:
        problems.append(f"{step_id}: it has more than one default route; keep one.")
    return problems


def _reach(origin: str, neighbours) -> set[str]:
    seen = {origin}
    stack = [origin]
    while stack:
        for nxt in neighbours(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _closed_loops(proc: Procedure, trapped: set[str]) -> list[list[str]]:
    """Strongly connected groups of trapped steps that route among themselves: loops with no exit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's algorithm; the procedure is small, recursion is fine
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in proc.successors(v):
            if w not in trapped:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in proc.successors(v):
                groups.append(sorted(group))

    for step_id in sorted(trapped):
        if step_id not in index:
            visit(step_id)
    return groups
