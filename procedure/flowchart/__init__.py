"""The procedure's flowchart, drawn from its definition: BPMN 2.0 (with diagram) and Mermaid."""

from procedure.flowchart.bpmn import to_bpmn
from procedure.flowchart.graph import DEFAULT_ROUTE_LABEL, Chart, Flow, Node, build_chart
from procedure.flowchart.mermaid import to_mermaid

__all__ = ["DEFAULT_ROUTE_LABEL", "Chart", "Flow", "Node", "build_chart", "to_bpmn", "to_mermaid"]
