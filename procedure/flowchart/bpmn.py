"""The procedure as BPMN 2.0 XML: one pool, a lane per role, and a diagram that opens in bpmn.io."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from procedure.flowchart.graph import Chart, build_chart, lane_label
from procedure.flowchart.layout import Box, layout
from procedure.model import Procedure

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

TITLE = "Producción de piezas audiovisuales"
PROCESS_ID = "Process_PiezasAudiovisuales"
COLLABORATION_ID = "Collaboration_PiezasAudiovisuales"
PARTICIPANT_ID = "Participant_OCOIM"
TAGS = {"start": "startEvent", "task": "task", "gateway": "exclusiveGateway", "end": "endEvent"}


def _q(tag: str) -> str:
    prefix, name = tag.split(":")
    return f"{{{NS[prefix]}}}{name}"


def _sub(parent: ET.Element, tag: str, **attrs: object) -> ET.Element:
    return ET.SubElement(parent, _q(tag), {k: str(v) for k, v in attrs.items() if v is not None})


def _bounds(parent: ET.Element, b: Box) -> None:
    _sub(parent, "dc:Bounds", x=round(b.x), y=round(b.y), width=round(b.w), height=round(b.h))


def to_bpmn(proc: Procedure) -> str:
    chart = build_chart(proc)
    root = ET.Element(_q("bpmn:definitions"), {
        "id": "Definitions_PiezasAudiovisuales",
        "targetNamespace": "urn:claqueta:procedimiento",
        "exporter": "Claqueta",
        "exporterVersion": "1",
    })
    collab = _sub(root, "bpmn:collaboration", id=COLLABORATION_ID)
    _sub(collab, "bpmn:participant", id=PARTICIPANT_ID, name=TITLE, processRef=PROCESS_ID)
    process = _sub(root, "bpmn:process", id=PROCESS_ID, name=TITLE, isExecutable="true")
    _semantics(process, chart)
    _diagram(root, chart)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _lane_id(role: str) -> str:
    return f"Lane_{role}"


def _semantics(process: ET.Element, chart: Chart) -> None:
    lane_set = _sub(process, "bpmn:laneSet", id="LaneSet_Roles")
    for role in chart.lanes:
        lane = _sub(lane_set, "bpmn:lane", id=_lane_id(role), name=lane_label(role))
        for n in chart.nodes:
            if n.lane == role:
                _sub(lane, "bpmn:flowNodeRef").text = n.id

    default_of = {f.source: f.id for f in chart.flows if f.is_default}
    for n in chart.nodes:
        el = _sub(process, f"bpmn:{TAGS[n.kind]}", id=n.id, name=n.name or None,
                  default=default_of.get(n.id) if n.kind == "gateway" else None)
        if n.kind == "task" and n.step is not None and n.step.description:
            _sub(el, "bpmn:documentation").text = n.step.description
        for f in chart.flows:
            if f.target == n.id:
                _sub(el, "bpmn:incoming").text = f.id
        for f in chart.flows:
            if f.source == n.id:
                _sub(el, "bpmn:outgoing").text = f.id

    for f in chart.flows:
        el = _sub(process, "bpmn:sequenceFlow", id=f.id, name=f.name, sourceRef=f.source, targetRef=f.target)
        if f.guard is not None:
            # A Python expression over the request's attributes, so a BPMN engine could run the chart too.
            cond = _sub(el, "bpmn:conditionExpression", **{f"{{{NS['xsi']}}}type": "bpmn:tFormalExpression"})
            cond.text = f"{f.guard.field} == {f.guard.equals!r}"


def _diagram(root: ET.Element, chart: Chart) -> None:
    lay = layout(chart)
    diagram = _sub(root, "bpmndi:BPMNDiagram", id="BPMNDiagram_PiezasAudiovisuales")
    plane = _sub(diagram, "bpmndi:BPMNPlane", id="BPMNPlane_PiezasAudiovisuales", bpmnElement=COLLABORATION_ID)
    shape = _sub(plane, "bpmndi:BPMNShape", id=f"{PARTICIPANT_ID}_di", bpmnElement=PARTICIPANT_ID,
                 isHorizontal="true")
    _bounds(shape, lay.pool)
    for role, box in lay.lanes.items():
        shape = _sub(plane, "bpmndi:BPMNShape", id=f"{_lane_id(role)}_di", bpmnElement=_lane_id(role),
                     isHorizontal="true")
        _bounds(shape, box)
    for n in chart.nodes:
        shape = _sub(plane, "bpmndi:BPMNShape", id=f"{n.id}_di", bpmnElement=n.id,
                     isMarkerVisible="true" if n.kind == "gateway" else None)
        _bounds(shape, lay.shapes[n.id])
        if n.id in lay.node_labels:
            _bounds(_sub(shape, "bpmndi:BPMNLabel"), lay.node_labels[n.id])
    for f in chart.flows:
        edge = _sub(plane, "bpmndi:BPMNEdge", id=f"{f.id}_di", bpmnElement=f.id)
        for x, y in lay.waypoints[f.id]:
            _sub(edge, "di:waypoint", x=round(x), y=round(y))
        if f.id in lay.flow_labels:
            _bounds(_sub(edge, "bpmndi:BPMNLabel"), lay.flow_labels[f.id])
