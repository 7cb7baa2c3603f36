"""Where each shape and line of the BPMN diagram goes: columns in procedure order, one row per lane."""

from __future__ import annotations

from dataclasses import dataclass, field

from procedure.flowchart.graph import Chart, Flow

POOL_HEADER = 30  # the participant's name strip
LANE_HEADER = 30  # each lane's name strip
MARGIN_X = 40
SIZES = {"task": (150, 100), "gateway": (50, 50), "start": (36, 36), "end": (36, 36)}
GAP = 60
GAP_TO_OWN_GATEWAY = 40
GAP_AFTER_GATEWAY = 130  # room for the branch label beside the gateway
ROW_HALF = 50  # half the tallest shape: every shape in a lane is centred on the lane's row
TRACK = 12  # spacing of parallel lines in a lane's top or bottom channel
TOP_ZONE = 90  # above the row: decision names and branch labels, then the lines
BOTTOM_ZONE = 90  # below the row: branch labels, then the lines
LANE_PADDING = 18
MIN_LANE_HEIGHT = 220  # the lanes' Spanish names are long and written vertically


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def overlaps(self, other: Box) -> bool:
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)


@dataclass
class Layout:
    pool: Box
    lanes: dict[str, Box]
    shapes: dict[str, Box]  # node id → bounds
    node_labels: dict[str, Box]  # gateway and event names drawn outside the shape
    waypoints: dict[str, list[tuple[float, float]]]  # flow id → points
    flow_labels: dict[str, Box] = field(default_factory=dict)


@dataclass
class _Route:
    flow: Flow
    adjacent: bool
    out_side: str = "right"  # "right" | "top" | "bottom"
    in_side: str = "left"
    channel: tuple[str, str] | None = None  # (lane, "top" | "bottom")
    track: int = 0
    out_x: float = 0.0
    in_x: float = 0.0


def layout(chart: Chart) -> Layout:
    nodes = {n.id: n for n in chart.nodes}
    column = {n.id: i for i, n in enumerate(chart.nodes)}
    lane_index = {lane: i for i, lane in enumerate(chart.lanes)}

    # x is fixed by procedure order alone, so lines can be routed before the lanes' heights are known.
    x0 = POOL_HEADER + LANE_HEADER + MARGIN_X
    xs: dict[str, float] = {}
    cursor = x0
    for i, n in enumerate(chart.nodes):
        xs[n.id] = cursor
        nxt = chart.nodes[i + 1] if i + 1 < len(chart.nodes) else None
        if n.kind == "gateway":
            gap = GAP_AFTER_GATEWAY
        elif nxt is not None and nxt.kind == "gateway" and nxt.step is n.step:
            gap = GAP_TO_OWN_GATEWAY
        else:
            gap = GAP
        cursor += SIZES[n.kind][0] + gap
    width = cursor - GAP + MARGIN_X

    def left(nid: str) -> float:
        return xs[nid]

    def right(nid: str) -> float:
        return xs[nid] + SIZES[nodes[nid].kind][0]

    def centre_x(nid: str) -> float:
        return xs[nid] + SIZES[nodes[nid].kind][0] / 2

    # Neighbouring columns connect side to side; every other line leaves by the top or bottom of its
    # shape and runs along a lane's margin, where no shape stands (each column holds one shape).
    routes: list[_Route] = []
    sides_used: dict[tuple[str, str], list[_Route]] = {}
    for f in chart.flows:
        if column[f.target] == column[f.source] + 1:
            routes.append(_Route(f, adjacent=True))
            continue
        r = _Route(f, adjacent=False)
        ls, lt = lane_index[nodes[f.source].lane], lane_index[nodes[f.target].lane]
        if lt > ls:
            r.out_side, r.in_side, r.channel = "bottom", "top", (nodes[f.target].lane, "top")
        elif lt < ls:
            r.out_side, r.in_side, r.channel = "top", "bottom", (nodes[f.target].lane, "bottom")
        else:
            side = "bottom" if column[f.target] > column[f.source] else "top"
            if (f.source, side) in sides_used and nodes[f.source].kind != "task":
                side = "top" if side == "bottom" else "bottom"
            r.out_side = r.in_side = side
            r.channel = (nodes[f.source].lane, side)
        sides_used.setdefault((f.source, r.out_side), []).append(r)
        sides_used.setdefault((f.target, r.in_side), []).append(r)
        routes.append(r)

    # Several lines on one side of a task are spread along it, ordered by where their other end lies.
    for (nid, side), rs in sides_used.items():
        def other_x(r: _Route) -> float:
            return centre_x(r.flow.target if r.flow.source == nid else r.flow.source)

        rs.sort(key=other_x)
        for k, r in enumerate(rs):
            if nodes[nid].kind == "task":
                w = SIZES["task"][0]
                x = xs[nid] + w * (k + 1) / (len(rs) + 1)
            else:
                x = centre_x(nid)
            if r.flow.source == nid and r.out_side == side:
                r.out_x = x
            if r.flow.target == nid and r.in_side == side:
                r.in_x = x

    # Parallel lines in one channel get their own track; shorter spans run nearer the shapes.
    tracks: dict[tuple[str, str], list[list[tuple[float, float]]]] = {}
    channelled = sorted((r for r in routes if r.channel), key=lambda r: abs(r.in_x - r.out_x))
    for r in channelled:
        span = (min(r.out_x, r.in_x) - 4, max(r.out_x, r.in_x) + 4)
        lanes_tracks = tracks.setdefault(r.channel, [])
        for k, taken in enumerate(lanes_tracks):
            if all(span[1] < a or b < span[0] for a, b in taken):
                taken.append(span)
                r.track = k
                break
        else:
            lanes_tracks.append([span])
            r.track = len(lanes_tracks) - 1

    # Lanes grow to hold their tracks.
    lanes: dict[str, Box] = {}
    row_y: dict[str, float] = {}
    y = 0.0
    for lane in chart.lanes:
        top = TOP_ZONE + TRACK * len(tracks.get((lane, "top"), [])) + LANE_PADDING
        bottom = BOTTOM_ZONE + TRACK * len(tracks.get((lane, "bottom"), [])) + LANE_PADDING
        height = max(MIN_LANE_HEIGHT, top + 2 * ROW_HALF + bottom)
        extra = height - (top + 2 * ROW_HALF + bottom)
        row_y[lane] = y + top + extra / 2 + ROW_HALF
        lanes[lane] = Box(POOL_HEADER, y, width - POOL_HEADER, height)
        y += height
    pool = Box(0, 0, width, y)

    shapes: dict[str, Box] = {}
    for n in chart.nodes:
        w, h = SIZES[n.kind]
        shapes[n.id] = Box(xs[n.id], row_y[n.lane] - h / 2, w, h)

    def track_y(channel: tuple[str, str], k: int) -> float:
        lane, side = channel
        if side == "top":
            return row_y[lane] - ROW_HALF - TOP_ZONE - TRACK * k
        return row_y[lane] + ROW_HALF + BOTTOM_ZONE - 30 + TRACK * k

    waypoints: dict[str, list[tuple[float, float]]] = {}
    for r in routes:
        s, t = shapes[r.flow.source], shapes[r.flow.target]
        if r.adjacent:
            if s.cy == t.cy:
                pts = [(s.x + s.w, s.cy), (t.x, t.cy)]
            else:
                mx = t.x - 20
                pts = [(s.x + s.w, s.cy), (mx, s.cy), (mx, t.cy), (t.x, t.cy)]
        else:
            sy = s.y if r.out_side == "top" else s.y + s.h
            ty = t.y if r.in_side == "top" else t.y + t.h
            cy = track_y(r.channel, r.track)
            pts = [(r.out_x, sy), (r.out_x, cy), (r.in_x, cy), (r.in_x, ty)]
        waypoints[r.flow.id] = pts

    flow_labels = _branch_labels(chart, routes, shapes)
    node_labels = _node_labels(chart, routes, shapes)
    return Layout(pool, lanes, shapes, node_labels, waypoints, flow_labels)


LABEL_W, LABEL_H = 90, 44


def _branch_labels(chart: Chart, routes: list[_Route], shapes: dict[str, Box]) -> dict[str, Box]:
    """Each branch's condition sits beside the gateway, in a corner the branch's own line leaves free."""
    labels: dict[str, Box] = {}
    for n in chart.nodes:
        if n.kind != "gateway":
            continue
        g = shapes[n.id]
        mine = [r for r in routes if r.flow.source == n.id and r.flow.name]
        taken: set[str] = set()
        for r in sorted(mine, key=lambda r: {"right": 0, "bottom": 1, "top": 2}[r.out_side]):
            t = shapes[r.flow.target]
            if r.out_side == "right":
                corner = "se" if t.cy < g.cy else "ne"
                box = (Box(g.x + g.w + 19, g.cy + 4, LABEL_W, LABEL_H) if corner == "se"
                       else Box(g.x + g.w + 19, g.cy - 4 - LABEL_H, LABEL_W, LABEL_H))
            elif r.out_side == "bottom":
                corner = "se" if "se" not in taken else "sw"
                box = (Box(g.cx + 6, g.y + g.h + 4, LABEL_W, LABEL_H) if corner == "se"
                       else Box(g.cx - 6 - LABEL_W, g.cy + ROW_HALF + 4, LABEL_W, LABEL_H))
            else:
                corner = "ne" if "ne" not in taken else "ne-high"
                box = (Box(g.cx + 6, g.y - 4 - LABEL_H, LABEL_W, LABEL_H) if corner == "ne"
                       else Box(g.cx + 6, g.cy - 52 - LABEL_H, LABEL_W, LABEL_H))
            taken.add(corner)
            labels[r.flow.id] = box
    return labels


def _node_labels(chart: Chart, routes: list[_Route], shapes: dict[str, Box]) -> dict[str, Box]:
    labels: dict[str, Box] = {}
    for n in chart.nodes:
        b = shapes[n.id]
        if n.kind == "gateway":
            top_used = any(r.flow.source == n.id and r.out_side == "top" for r in routes)
            # Above the gateway; pushed left of the line when a branch leaves by the top.
            x = b.cx - 6 - LABEL_W if top_used else b.cx - 42
            labels[n.id] = Box(x, b.cy - ROW_HALF - 4 - 70, LABEL_W if top_used else 84, 70)
        elif n.kind in ("start", "end"):
            labels[n.id] = Box(b.cx - 25, b.y + b.h + 5, 50, 14)
    return labels
