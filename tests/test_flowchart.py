"""The flowchart drawn from the procedure definition: BPMN that parses, runs and lays out cleanly, and Mermaid."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, BpmnValidator
from SpiffWorkflow.util.task import TaskState

from procedure.definition import PROCEDURE
from procedure.flowchart import DEFAULT_ROUTE_LABEL, to_bpmn, to_mermaid
from procedure.model import END, Guard, Output, OutputKind, Phase, Procedure, Route, Step, StepKind
from procedure.roles import Role
from procedure.validation import validate

ROOT = Path(__file__).resolve().parents[1]
PROCESS_ID = "Process_PiezasAudiovisuales"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}


def xml_id(step_id: str) -> str:
    return step_id.replace("-", "_")


def parse_spec(proc: Procedure):
    parser = BpmnParser(validator=BpmnValidator())  # also checks the XML against the BPMN 2.0 schema
    parser.add_bpmn_str(to_bpmn(proc).encode("utf-8"), filename="procedimiento.bpmn")
    return parser.get_spec(PROCESS_ID)


def successors_in_chart(spec, step_id: str) -> set[str]:
    """Where the chart lets a step go: straight on, or through its gateway; END for the end event."""
    ts = spec.task_specs[xml_id(step_id)]
    targets: set[str] = set()
    for out in ts.outputs:
        nexts = out.outputs if type(out).__name__ == "ExclusiveGateway" else [out]
        for n in nexts:
            targets.add(END if type(n).__name__ == "EndEvent" else n.bpmn_name.split(" ")[0])
    return targets


def step_tasks(spec) -> dict[str, object]:
    return {t.bpmn_id: t for t in spec.task_specs.values() if type(t).__name__ == "NoneTask"}


def with_extra_step(proc: Procedure) -> Procedure:
    """POS-08 now asks whether the piece is about an APP or PA project and, if so, goes to a new POS-09."""
    extra = Step(
        "POS-09", "Publicar la pieza en el portal de proyectos", Phase.POS, StepKind.TASK, ("COMMS",),
        Output(OutputKind.EMAIL, "Correo electrónico", ("REQUESTING_AREA",)),
        (Route(END),),
    )
    steps = tuple(
        replace(s, routes=(Route("POS-09", Guard("investment_project", True)), Route(END)),
                decision="¿Se publica en el portal de proyectos?")
        if s.id == "POS-08" else s
        for s in proc.steps
    )
    return validate(Procedure(steps=(*steps, extra), start=proc.start, entries=proc.entries))


# ── BPMN: the process the chart describes is the definition's ──────────────────────────────────


def test_bpmn_has_one_task_per_step_named_with_its_id_and_words_in_its_roles_lane():
    tasks = step_tasks(parse_spec(PROCEDURE))

    assert set(tasks) == {xml_id(s.id) for s in PROCEDURE.steps}
    for step in PROCEDURE.steps:
        task = tasks[xml_id(step.id)]
        assert task.bpmn_name == f"{step.id} {step.name}"
        assert task.lane == Role(step.roles[0]).label


def test_bpmn_has_one_gateway_per_decision_named_with_its_question():
    spec = parse_spec(PROCEDURE)
    gateways = {t.bpmn_id: t for t in spec.task_specs.values() if type(t).__name__ == "ExclusiveGateway"}
    deciding = [s for s in PROCEDURE.steps if any(r.when for r in s.routes)]

    assert len(deciding) == 11  # the nine decisions, PRO-03's services branch and 7.4's review
    assert set(gateways) == {f"Gateway_{xml_id(s.id)}" for s in deciding}
    for step in deciding:
        gateway = gateways[f"Gateway_{xml_id(step.id)}"]
        assert [o.bpmn_id for o in spec.task_specs[xml_id(step.id)].outputs] == [gateway.bpmn_id]
        if step.decision:
            assert gateway.bpmn_name == step.decision
    assert gateways["Gateway_PRE_01"].bpmn_name == "¿Qué tipo de pieza audiovisual es?"
    assert gateways["Gateway_PRE_10"].bpmn_name == "¿Es conforme?"


def test_bpmn_flows_are_the_definitions_routes():
    spec = parse_spec(PROCEDURE)
    for step in PROCEDURE.steps:
        assert successors_in_chart(spec, step.id) == {r.to for r in step.routes}, step.id
    # (SpiffWorkflow adds an unnamed internal output to the first start event; only named ones are ours.)
    assert [o.bpmn_id for o in spec.task_specs["StartEvent"].outputs if o.bpmn_id] == ["PRE_01"]
    assert [o.bpmn_id for o in spec.task_specs["StartEvent_TER_01"].outputs if o.bpmn_id] == ["TER_01"]


def test_each_branch_is_labelled_with_its_condition_in_spanish():
    root = ET.fromstring(to_bpmn(PROCEDURE))
    flows = {f.get("id"): f for f in root.iter(f"{{{NS['bpmn']}}}sequenceFlow")}
    gateway = root.find(".//bpmn:exclusiveGateway[@id='Gateway_PRO_02']", NS)
    labels = {flows[o.text].get("targetRef"): flows[o.text].get("name") for o in gateway.findall("bpmn:outgoing", NS)}

    assert labels == {"PRO_03": "Servicio de animación", "PRO_04": "Servicio de grabación",
                      "PRO_06": DEFAULT_ROUTE_LABEL}
    assert flows[gateway.get("default")].get("targetRef") == "PRO_06"
    review = root.find(".//bpmn:exclusiveGateway[@id='Gateway_POS_04']", NS)
    assert {flows[o.text].get("name") for o in review.findall("bpmn:outgoing", NS)} == {
        "Sí, es conforme", "No, ajustes"}


def expected_path(proc: Procedure, request: dict) -> list[str]:
    """The steps a request goes through, read straight off the definition (first matching route wins)."""
    path, current = [], proc.start
    while current != END:
        path.append(current)
        routes = proc[current].routes
        guarded = [r for r in routes if r.when and request[r.when.field] == r.when.equals]
        current = (guarded or [r for r in routes if r.when is None])[0].to
    return path


@pytest.mark.parametrize("request_data", [
    dict(piece_type="A", investment_project=False, outside_producer=True, needs_animation=True,
         needs_filming=False),
    dict(piece_type="B", investment_project=True, outside_producer=False, needs_animation=True,
         needs_filming=True),
    dict(piece_type="B", investment_project=False, outside_producer=False, needs_animation=False,
         needs_filming=True),
    dict(piece_type="B", investment_project=False, outside_producer=True, needs_animation=False,
         needs_filming=False),
])
def test_a_bpmn_engine_running_the_chart_takes_the_definitions_path(request_data):
    request_data = {**request_data, "verdict": "approved"}
    workflow = BpmnWorkflow(parse_spec(PROCEDURE))
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(request_data)
    done = []
    for _ in range(200):
        workflow.do_engine_steps()
        ready = workflow.get_tasks(state=TaskState.READY)
        if not ready:
            break
        done.append(ready[0].task_spec.bpmn_name.split(" ")[0])
        ready[0].run()

    assert workflow.is_completed()
    assert done == expected_path(PROCEDURE, request_data)


# ── BPMN diagram: everything drawn, nothing on top of anything else ────────────────────────────


def bounds(el) -> tuple[float, float, float, float]:
    b = el.find("dc:Bounds", NS)
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.fixture(scope="module")
def diagram():
    root = ET.fromstring(to_bpmn(PROCEDURE))
    process = root.find("bpmn:process", NS)
    nodes = [el for el in process if el.tag.split("}")[1] in ("task", "exclusiveGateway", "startEvent", "endEvent")]
    flows = process.findall("bpmn:sequenceFlow", NS)
    lanes = process.findall("bpmn:laneSet/bpmn:lane", NS)
    shapes = {s.get("bpmnElement"): s for s in root.iter(f"{{{NS['bpmndi']}}}BPMNShape")}
    edges = {e.get("bpmnElement"): e for e in root.iter(f"{{{NS['bpmndi']}}}BPMNEdge")}
    return root, nodes, flows, lanes, shapes, edges


def test_diagram_draws_every_lane_node_and_flow(diagram):
    root, nodes, flows, lanes, shapes, edges = diagram

    assert {lane.get("name") for lane in lanes} == {Role(s.roles[0]).label for s in PROCEDURE.steps}
    assert len(nodes) == len(PROCEDURE.steps) + 11 + len(PROCEDURE.starts) + 1
    for el in [*nodes, *lanes, root.find("bpmn:collaboration/bpmn:participant", NS)]:
        assert el.get("id") in shapes, el.get("id")
    for flow in flows:
        points = edges[flow.get("id")].findall("di:waypoint", NS)
        assert len(points) >= 2, flow.get("id")


def test_no_two_shapes_overlap_and_each_sits_in_its_lane(diagram):
    root, nodes, flows, lanes, shapes, edges = diagram
    boxes = {n.get("id"): bounds(shapes[n.get("id")]) for n in nodes}
    ids = sorted(boxes)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            assert not overlap(boxes[a], boxes[b]), f"{a} overlaps {b}"
    lane_boxes = [bounds(shapes[lane.get("id")]) for lane in lanes]
    for i, a in enumerate(lane_boxes):
        for b in lane_boxes[i + 1:]:
            assert not overlap(a, b)
    for lane in lanes:
        lx, ly, lw, lh = bounds(shapes[lane.get("id")])
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            x, y, w, h = boxes[ref.text]
            assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, ref.text


def test_lines_are_orthogonal_and_cross_no_shape_but_their_own_ends(diagram):
    root, nodes, flows, lanes, shapes, edges = diagram
    boxes = {n.get("id"): bounds(shapes[n.get("id")]) for n in nodes}
    for flow in flows:
        pts = [(float(p.get("x")), float(p.get("y"))) for p in edges[flow.get("id")].findall("di:waypoint", NS)]
        ends = {flow.get("sourceRef"), flow.get("targetRef")}
        for (x1, y1), (x2, y2) in zip(pts, pts[1:]):
            assert x1 == x2 or y1 == y2, flow.get("id")
            segment = (min(x1, x2), min(y1, y2), abs(x2 - x1) or 0.5, abs(y2 - y1) or 0.5)
            for node_id, box in boxes.items():
                if node_id not in ends:
                    assert not overlap(segment, box), f"{flow.get('id')} crosses {node_id}"
        # Both ends touch their own shapes' outlines (a gateway's or event's at a corner point).
        for (x, y), node_id in ((pts[0], flow.get("sourceRef")), (pts[-1], flow.get("targetRef"))):
            bx, by, bw, bh = boxes[node_id]
            assert bx <= x <= bx + bw and by <= y <= by + bh
            assert x in (bx, bx + bw) or y in (by, by + bh) or x == bx + bw / 2, flow.get("id")


# ── Mermaid ─────────────────────────────────────────────────────────────────────────────────


def test_mermaid_has_a_subgraph_per_phase_holding_its_steps():
    text = to_mermaid(PROCEDURE)
    assert text.startswith("flowchart TD\n")
    blocks = re.findall(r'subgraph (\w+)\["([^"]+)"\]\n(.*?)\n    end\n', text, re.S)
    assert [(pid, label) for pid, label, _ in blocks] == [
        ("PRE", "Preproducción"), ("PRO", "Producción"), ("POS", "Postproducción"),
        ("TER", "Piezas elaboradas por terceros (7.4)")]
    for pid, _, body in blocks:
        in_block = set(re.findall(r"^\s+(\w+)\[", body, re.M))
        assert in_block == {xml_id(s.id) for s in PROCEDURE.steps if s.phase.value == pid}


def test_mermaid_nodes_decisions_and_branches():
    text = to_mermaid(PROCEDURE)
    assert 'PRE_01["PRE-01<br/>Comprender el requerimiento de la pieza audiovisual"]' in text
    assert 'Gateway_PRE_16{"¿Se requiere contratar servicios de terceros (productora)?"}' in text
    assert 'Gateway_PRE_01 -->|"Tipo A: videos animados"| PRE_02' in text
    assert f'Gateway_PRO_02 -->|"{DEFAULT_ROUTE_LABEL}"| PRO_06' in text
    assert "POS_08 --> EndEvent" in text
    edges = re.findall(r"^    (\w+) -->(?:\|\"[^\"]*\"\|)? (\w+)$", text, re.M)
    assert len(edges) == text.count("-->")
    assert len(edges) == len(PROCEDURE.starts) + sum(len(s.routes) + (1 if any(r.when for r in s.routes) else 0)
                                 for s in PROCEDURE.steps)


def test_mermaid_escapes_what_would_break_a_label():
    steps = tuple(replace(s, name='Comprender el "requerimiento" <urgente> #1') if s.id == "PRE-01" else s
                  for s in PROCEDURE.steps)
    text = to_mermaid(Procedure(steps=steps, start="PRE-01"))
    assert 'PRE_01["PRE-01<br/>Comprender el #quot;requerimiento#quot; #lt;urgente#gt; #35;1"]' in text
    for line in text.splitlines():  # every label still opens and closes its quotes
        assert line.count('"') % 2 == 0, line


# ── Generated, not drawn by hand ─────────────────────────────────────────────────────────────


def test_a_changed_definition_changes_the_chart():
    changed = with_extra_step(PROCEDURE)
    spec = parse_spec(changed)

    assert "POS_09" in step_tasks(spec) and "POS_09" not in step_tasks(parse_spec(PROCEDURE))
    assert successors_in_chart(spec, "POS-08") == {"POS-09", END}
    gateway = spec.task_specs["Gateway_POS_08"]
    assert gateway.bpmn_name == "¿Se publica en el portal de proyectos?"
    assert spec.task_specs["POS_09"].lane == Role.COMMS.label
    text = to_mermaid(changed)
    assert 'Gateway_POS_08 -->|"Sí, proyecto APP o PA"| POS_09' in text
    assert f'Gateway_POS_08 -->|"{DEFAULT_ROUTE_LABEL}"| EndEvent' in text
    assert "POS_09" not in to_mermaid(PROCEDURE)


# ── Command line ─────────────────────────────────────────────────────────────────────────────


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "procedure", "flowchart", *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=60)


def test_cli_prints_bpmn():
    result = run_cli("--format", "bpmn")
    assert result.returncode == 0, result.stderr
    assert result.stdout == to_bpmn(PROCEDURE)
    for step in PROCEDURE.steps:
        assert f'id="{xml_id(step.id)}"' in result.stdout


def test_cli_prints_mermaid_by_default_and_writes_a_file(tmp_path):
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("subgraph ") == 4
    assert all(step.id in result.stdout for step in PROCEDURE.steps)

    out = tmp_path / "procedimiento.bpmn"
    result = run_cli("--format", "bpmn", "--output", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text(encoding="utf-8") == to_bpmn(PROCEDURE)


def test_cli_rejects_an_unknown_format():
    result = run_cli("--format", "visio")
    assert result.returncode != 0
    assert "visio" in result.stderr
