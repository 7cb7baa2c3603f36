"""The procedure as a Mermaid flowchart: a subgraph per phase, decisions as rhombi, branches labelled."""

from __future__ import annotations

from procedure.flowchart.graph import Chart, build_chart
from procedure.model import Phase, Procedure

# Mermaid reads these inside a quoted label as markup or as the end of the label.
_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;"}


def escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text)


def _node(chart: Chart, node_id: str) -> str:
    n = chart.node(node_id)
    if n.kind == "task":
        return f'{n.id}["{escape(n.step.id)}<br/>{escape(n.step.name)}"]'
    if n.kind == "gateway":
        return f'{n.id}{{"{escape(n.name)}"}}'
    return f'{n.id}(["{escape(n.name)}"])'


def to_mermaid(proc: Procedure) -> str:
    chart = build_chart(proc)
    lines = ["flowchart TD"]
    by_phase: dict[Phase, list[str]] = {}
    loose: list[str] = []
    for n in chart.nodes:
        if n.step is not None:
            by_phase.setdefault(n.step.phase, []).append(n.id)
        else:
            loose.append(n.id)
    for node_id in loose[:1]:
        lines.append(f"    {_node(chart, node_id)}")
    for phase in Phase:
        if phase not in by_phase:
            continue
        lines.append(f'    subgraph {phase.value}["{escape(phase.label)}"]')
        lines += [f"        {_node(chart, node_id)}" for node_id in by_phase[phase]]
        lines.append("    end")
    for node_id in loose[1:]:
        lines.append(f"    {_node(chart, node_id)}")
    for f in chart.flows:
        arrow = f'-->|"{escape(f.name)}"|' if f.name else "-->"
        lines.append(f"    {f.source} {arrow} {f.target}")
    return "\n".join(lines) + "\n"
