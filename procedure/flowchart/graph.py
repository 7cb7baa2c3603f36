"""The procedure as a graph of events, tasks, decisions and flows: what every flowchart format draws."""

from __future__ import annotations

import re
from dataclasses import dataclass

from procedure.model import END, Guard, Procedure, Step
from procedure.roles import Role

START_ID = "StartEvent"
END_ID = "EndEvent"
START_LABEL = "Inicio"
END_LABEL = "Fin"
# The label of the route a decision takes when none of its conditions applies.
DEFAULT_ROUTE_LABEL = "En otro caso"


@dataclass(frozen=True)
class Node:
    id: str  # XML-safe: usable as a BPMN id and a Mermaid node id
    kind: str  # "start" | "task" | "gateway" | "end"
    name: str
    lane: str  # the role name whose lane holds the node
    step: Step | None = None


@dataclass(frozen=True)
class Flow:
    id: str
    source: str  # node ids
    target: str
    name: str | None = None
    guard: Guard | None = None
    is_default: bool = False  # the route of a decision taken when no guarded one applies


@dataclass(frozen=True)
class Chart:
    nodes: tuple[Node, ...]  # in procedure order: start, each step (and its decision), end
    flows: tuple[Flow, ...]
    lanes: tuple[str, ...]  # role names, top to bottom

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def xml_id(step_id: str) -> str:
    """`PRE-01` → `PRE_01`: an id valid in XML (NCName) and in Mermaid."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", step_id)
    return safe if re.match(r"[A-Za-z_]", safe) else f"_{safe}"


def entry_start_id(step_id: str) -> str:
    return f"{START_ID}_{xml_id(step_id)}"


def gateway_id(step_id: str) -> str:
    return f"Gateway_{xml_id(step_id)}"


def has_decision(step: Step) -> bool:
    """A step decides where to go next when a route has a condition (or it has several routes)."""
    return any(r.when is not None for r in step.routes) or len(step.routes) > 1


def route_label(guard: Guard | None) -> str:
    return guard.describe() if guard is not None else DEFAULT_ROUTE_LABEL


def decision_label(step: Step) -> str:
    """The step's question; a step that does not word one asks after its guarded branches."""
    if step.decision:
        return step.decision
    return "¿" + " / ".join(r.when.describe() for r in step.routes if r.when is not None) + "?"


def _lane_order(proc: Procedure) -> tuple[str, ...]:
    """Roles that perform steps, in the Role enum's order (unknown names after, as they appear)."""
    performers: list[str] = []
    for step in proc.steps:
        if step.roles and step.roles[0] not in performers:
            performers.append(step.roles[0])
    known = [r.value for r in Role if r.value in performers]
    return tuple(known + [r for r in performers if r not in known])


def lane_label(role: str) -> str:
    return Role(role).label if role in Role.__members__ else role


def build_chart(proc: Procedure) -> Chart:
    lanes = _lane_order(proc)
    lane_of = {s.id: (s.roles[0] if s.roles else lanes[0]) for s in proc.steps}
    nodes: list[Node] = [Node(START_ID, "start", START_LABEL, lane_of.get(proc.start, lanes[0]))]
    flows: list[Flow] = []
    used_ids: set[str] = set()

    def target_id(to: str) -> str:
        return END_ID if to == END else xml_id(to)

    def add_flow(source: str, target: str, **kw) -> None:
        base = f"Flow_{source}_{target}"
        fid, n = base, 2
        while fid in used_ids:
            fid, n = f"{base}_{n}", n + 1
        used_ids.add(fid)
        flows.append(Flow(fid, source, target, **kw))

    add_flow(START_ID, target_id(proc.start))
    end_lane: str | None = None
    for step in proc.steps:
        task = xml_id(step.id)
        if step.id in proc.entries:  # another way in (7.4) gets its own start event, just before it
            start = entry_start_id(step.id)
            nodes.append(Node(start, "start", f"{START_LABEL}: {step.phase.label}", lane_of[step.id]))
            add_flow(start, task)
        nodes.append(Node(task, "task", f"{step.id} {step.name}", lane_of[step.id], step))
        if any(r.to == END for r in step.routes) and end_lane is None:
            end_lane = lane_of[step.id]
        if not has_decision(step):
            for route in step.routes:
                add_flow(task, target_id(route.to))
            continue
        gw = gateway_id(step.id)
        nodes.append(Node(gw, "gateway", decision_label(step), lane_of[step.id], step))
        add_flow(task, gw)
        for route in step.routes:
            add_flow(gw, target_id(route.to), name=route_label(route.when), guard=route.when,
                     is_default=route.when is None)
    nodes.append(Node(END_ID, "end", END_LABEL, end_lane or nodes[-1].lane))
    return Chart(tuple(nodes), tuple(flows), lanes)
