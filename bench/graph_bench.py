"""The issue-7 benchmark on the Microsoft Graph backend: approval latency at 100 ms per Graph call, Graph calls per transition and per reminder run.

    .venv/bin/python -m bench.run --backend graph            # about 6 minutes; bench/results/graph-latest.md
    .venv/bin/python -m bench.run --backend graph --quick    # about 4 minutes
    .venv/bin/python -m bench.run --backend graph --open-requests 500 --latency-ms 100

Everything on 127.0.0.1, each part in its own process: FakeGraph (`python -m tests.graph_server`, lists
provisioned, one Entra group per role of the people file), the fake Bot Connector, and the real app
(`python app.py` with CLAQUETA_BACKEND=graph and GRAPH_* pointing at FakeGraph). FakeGraph holds every
HTTP call `--latency-ms` (100) before answering; a $batch is one call.

1. Seeding, at 0 ms: open requests are written through the store itself (SharePointRequestStore.create,
   16 at a time) and their outboxes drained into "Historial", so the app starts with nothing to drain.
   Requests at PRE-14 (the area director's conformity) are the ones clicked; the others are spread over
   every open step.
2. Graph calls per click, with the dispatcher paused: the app built in this process with
   `dispatch_effects=False`, clicks sent one at a time over HTTP; FakeGraph's call records between two
   clicks are that click's calls, by route. Nothing else talks to FakeGraph then, so the count is exact.
   Then, at 0 ms, the dispatcher is run until those clicks' effects are delivered: the Graph calls the
   effects of one transition cost afterwards (outbox drain, claims, deliveries, completions).
3. Approval click latency: the app as a subprocess (dispatcher running) at 100 ms per call: one at a
   time, then with a few concurrent clients; p50/p95/p99 as the load generator sees them (request in →
   invoke answer with the updated card out). Total Graph calls seen in each window, dispatcher included.
4. One reminder run (ReminderJob.run_once, in this process) over every open request, at 100 ms per call:
   its time and its Graph calls; then the same day's second run (nothing new).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import aiohttp

from bench import seed
from bench.run import (DIRECTOR_DSI, LIMA, PEOPLE_FILE, REQUESTER_DSI, ROOT, LoadResult, _check_invoke, _env,
                       _free_port, invoke_bodies, known, load, start, start_connector, verdict)

OFFICE_MAILBOX = "audiovisual@proinversion.gob.pe"
TARGETS = {"approval_p99_ms": 1000.0, "calls_per_transition": 3}


# ── FakeGraph in its own process ─────────────────────────────────────────────────────────────


class FakeGraphProcess:
    def __init__(self, latency_ms: float):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.graph_server", "--port", "0",
                                      "--latency-ms", str(latency_ms), "--people-file", str(PEOPLE_FILE)],
                                     cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("FakeGraph did not start")
        self.info = json.loads(line)
        self.control = self.info["control_url"]
        self.list_names: dict[str, str] = {}

    async def _get(self, path: str) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.control + path) as response:
                return await response.json()

    async def calls_since(self, since: int) -> tuple[int, list[dict]]:
        answer = await self._get(f"/calls?since={since}")
        return answer["total"], answer["calls"]

    async def mark(self) -> int:
        return (await self.calls_since(1 << 40))[0]

    async def set_latency(self, ms: float) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(self.control + "/latency", json={"ms": ms}) as response:
                response.raise_for_status()

    async def counts(self) -> dict:
        answer = await self._get("/counts")
        self.list_names = answer["lists"]
        return answer

    def label(self, call: dict) -> str:
        """`items.list Solicitudes`, `batch`, `sendMail`…: the route, and for list routes the list's name."""
        parts = call["path"].split("/")
        if "lists" in parts and parts.index("lists") + 1 < len(parts):
            segment = unquote(parts[parts.index("lists") + 1])
            name = self.list_names.get(segment, segment)  # the store addresses lists by name
            return f"{call['route']} {name}"
        return call["route"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def graph_env(fg: FakeGraphProcess, data_dir: Path, port: int) -> dict[str, str]:
    info = fg.info
    return _env(CLAQUETA_BACKEND="graph", CLAQUETA_DATA_DIR=str(data_dir), CLAQUETA_LOCAL_MODE="true",
                CLAQUETA_LOG_LEVEL="WARNING", CLAQUETA_PEOPLE_FILE=str(PEOPLE_FILE), PORT=str(port),
                GRAPH_BASE_URL=info["base_url"], GRAPH_STATIC_TOKEN=info["token"],
                SHAREPOINT_SITE_ID=info["site_id"], SHAREPOINT_DRIVE_ID=info["drive_id"],
                OFFICE_MAILBOX=OFFICE_MAILBOX, GRAPH_ROLE_GROUPS=json.dumps(info["role_groups"]))


def graph_settings(fg: FakeGraphProcess, data_dir: Path):
    from config.settings import Settings

    info = fg.info
    return Settings(_env_file=None, backend="graph", local_mode=True, app_id="", data_dir=data_dir,
                    people_file=PEOPLE_FILE, graph_base_url=info["base_url"], graph_static_token=info["token"],
                    sharepoint_site_id=info["site_id"], sharepoint_drive_id=info["drive_id"],
                    office_mailbox=OFFICE_MAILBOX, graph_role_groups=info["role_groups"])


# ── seeding through the store ────────────────────────────────────────────────────────────────


async def drain_outboxes(store, parallel: int = 16) -> None:
    """Move every outbox into "Historial"/"Efectos" (the store's own drain, several items at once)."""
    rows = await store._query("requests", "fields/TieneEfectos eq 1")  # noqa: SLF001 - bench seeding
    gate = asyncio.Semaphore(parallel)

    async def one(row):
        async with gate:
            await store._drain_row(row)  # noqa: SLF001

    await asyncio.gather(*(one(r) for r in rows))


async def seed_graph(store, *, pre14: int, others: int, service_url: str) -> list[tuple[str, int]]:
    """`pre14` requests at PRE-14 and `others` at every other open step, written with store.create (with
    their history, no effects); conversation references for everyone. Returns (number, version) at PRE-14."""
    from config.deadlines import load_deadlines
    from config.settings import CONFIG_DIR
    from local.directory import YamlDirectory
    from procedure.definition import PROCEDURE

    directory = YamlDirectory(PEOPLE_FILE)
    deadlines = load_deadlines(CONFIG_DIR / "deadlines.yaml")
    now = datetime.now(LIMA)
    templates = [await seed.walk(PROCEDURE, directory, deadlines.lead_time, requester_id=REQUESTER_DSI, area="DSI",
                                 filed_at=now - timedelta(days=age), step_days=age / 25) for age in (10, 45)]
    open_states = [s for t in templates for s in t if s.request.step_id != "END"]
    year = now.year
    rows = [seed.renumbered(seed.at_step(templates[0], "PRE-14"), n) for n in seed.numbers(year, 1, pre14)]
    rows += [seed.renumbered(open_states[i % len(open_states)], n)
             for i, n in enumerate(seed.numbers(year, pre14 + 1, others))]
    gate = asyncio.Semaphore(16)

    async def put(request, history):
        async with gate:
            await store.create(request, history, [])

    await asyncio.gather(*(put(r, h) for r, h in rows))
    await seed.save_references_async(store, [p.id for p in await seed.everyone(directory)], service_url)
    await drain_outboxes(store)
    return [(r.number, r.version) for r, _ in rows[:pre14]]


# ── the phases ───────────────────────────────────────────────────────────────────────────────


def approve_bodies(requests: list[tuple[str, int]], service_url: str) -> list[bytes]:
    from cards.verbs import Verb

    director = known(DIRECTOR_DSI, "Carmen Torres Villanueva")
    return invoke_bodies([(Verb.REVIEW_APPROVE.value, {"number": n, "version": v, "step": "PRE-14"}, director)
                          for n, v in requests], service_url)


def stale(raw: bytes) -> str | None:
    return "stale card" if "desactualizada" in raw.decode("utf-8", "replace") else None


async def calls_per_click(fg: FakeGraphProcess, components, requests: list[tuple[str, int]], service_url: str,
                          latency_ms: float, warmup: int) -> dict:
    """Phase 2: the app in this process, dispatcher paused; each click's Graph calls, then the effects' cost."""
    from aiohttp.test_utils import TestClient, TestServer

    from app import create_web_app

    app = create_web_app(components, schedule_reminders=False, dispatch_effects=False)
    out: dict = {}
    async with TestClient(TestServer(app)) as client:
        url = str(client.make_url("/api/messages"))
        await fg.set_latency(latency_ms)
        await load("warm", url, approve_bodies(requests[:warmup], service_url), 1, _check_invoke)
        per_click: list[Counter] = []
        latencies, failures = [], 0
        for body in approve_bodies(requests[warmup:], service_url):
            before = await fg.mark()
            result = await load("one", url, [body], 1, _check_invoke, stale)
            latencies += result.latencies_ms
            failures += result.failures
            _, calls = await fg.calls_since(before)
            per_click.append(Counter(fg.label(c) for c in calls if not c["in_batch"]))
        out["hot"] = LoadResult("Clic de conformidad, despachador en pausa (en proceso)", len(per_click), 1,
                                sum(latencies) / 1000, latencies, failures)
        out["per_click"] = per_click
        # The same transitions' effects, delivered by the dispatcher at 0 ms (counts do not depend on latency).
        await fg.set_latency(0)
        before = await fg.mark()
        started = time.perf_counter()
        for _ in range(2000):
            if not await components.dispatcher.run_once():
                pending = await components.store._query(  # noqa: SLF001
                    "effects", "fields/Estado eq 'pending'", top=1, limit=1)
                if not pending:
                    break
                await asyncio.sleep(0.05)
        out["dispatch_s"] = time.perf_counter() - started
        _, calls = await fg.calls_since(before)
        out["dispatch_calls"] = Counter(fg.label(c) for c in calls if not c["in_batch"])
        out["dispatch_transitions"] = len(per_click) + warmup
        out["dispatch_sub"] = sum(1 for c in calls if c["in_batch"])
    return out


async def app_latency(fg: FakeGraphProcess, requests: list[tuple[str, int]], service_url: str, work: Path,
                      args) -> dict:
    """Phase 3: the app as a subprocess at `latency_ms` per Graph call, its dispatcher running."""
    await fg.set_latency(args.latency_ms)
    port = _free_port()
    data_dir = work / "app"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = await start([sys.executable, "app.py", "--port", str(port)], graph_env(fg, data_dir, port), port,
                         data_dir / "app.log")
    out: dict = {"startup_s": server.startup_s}
    try:
        warm, rest = requests[:args.warmup], requests[args.warmup:]
        serial, concurrent = rest[:args.serial], rest[args.serial:]
        await load("warm", server.url, approve_bodies(warm, service_url), 1, _check_invoke)
        before = await fg.mark()
        out["serial"] = await load("Clic de conformidad (review.approve), de uno en uno", server.url,
                                   approve_bodies(serial, service_url), 1, _check_invoke, stale)
        middle = await fg.mark()
        out["concurrent"] = await load(f"Clic de conformidad, {args.concurrency} clientes a la vez", server.url,
                                       approve_bodies(concurrent, service_url), args.concurrency, _check_invoke,
                                       stale)
        after = await fg.mark()
        out["serial_calls"] = middle - before
        out["concurrent_calls"] = after - middle
        out["memory_mb"] = server.memory_mb()
        log = (data_dir / "app.log").read_text(errors="replace")
        out["app_errors"] = log.count("Traceback")
    finally:
        server.stop()
    return out


async def reminder_run(fg: FakeGraphProcess, components, latency_ms: float) -> dict:
    """Phase 4: ReminderJob.run_once over every open request, twice (the second finds nothing new)."""
    from local.clock import FixedClock
    from procedure.calendar import is_working_day
    from services.ports import RequestQuery
    from services.reminders import ReminderJob

    store = components.store
    await fg.set_latency(0)
    await drain_outboxes(store)  # what phase 3 left behind is not the reminder run's cost
    open_count = len(await store.find(RequestQuery(open_only=True, limit=100_000)))
    await components.directory.people_with_role("COORDINATOR")  # the directory cache is warm, as in the app
    morning = datetime.now(LIMA).replace(hour=10, minute=0, second=0, microsecond=0)
    while not is_working_day(morning.date()):
        morning += timedelta(days=1)
    job = ReminderJob(components.bot.proc, store, components.directory, FixedClock(morning), components.deadlines)
    await fg.set_latency(latency_ms)
    out: dict = {"open": open_count}
    for key in ("first", "again"):
        before = await fg.mark()
        started = time.perf_counter()
        try:
            run = await job.run_once()
            effects, added, error = len(run.effects), len(run.added), ""
        except Exception as exc:  # noqa: BLE001 - a failed run is a result to report, not a crash of the bench
            effects, added, error = 0, 0, f"{type(exc).__name__}: {exc}"[:300]
        elapsed = time.perf_counter() - started
        _, calls = await fg.calls_since(before)
        out[key] = {"s": elapsed, "effects": effects, "added": added, "error": error,
                    "calls": Counter(fg.label(c) for c in calls if not c["in_batch"]),
                    "sub": sum(1 for c in calls if c["in_batch"])}
    return out


# ── the report ───────────────────────────────────────────────────────────────────────────────


def _mean(counters: list[Counter]) -> tuple[float, Counter]:
    total = Counter()
    for c in counters:
        total.update(c)
    n = max(1, len(counters))
    return sum(total.values()) / n, total


def _routes(counter: Counter, n: int) -> str:
    return "; ".join(f"{k} {v / n:.2g}" for k, v in counter.most_common())


def report(args, seeded: dict, hot: dict, lat: dict, rem: dict, total_s: float) -> str:
    mean_calls, by_route = _mean(hot["per_click"])
    lo, hi = min(sum(c.values()) for c in hot["per_click"]), max(sum(c.values()) for c in hot["per_click"])
    # Of a click's reads of «Solicitudes», one is RequestService.act's store.get (the others are the bot's
    # access check before it and the card view after it); save() PATCHes on the eTag that get() kept.
    store_calls = [min(1, c.get("items.list Solicitudes", 0)) + c.get("items.update Solicitudes", 0)
                   for c in hot["per_click"]]
    dispatch_n = hot["dispatch_transitions"]
    dispatch_total = sum(hot["dispatch_calls"].values())
    lines = [
        f"# Claqueta bench — Microsoft Graph backend (SharePoint lists on FakeGraph){' — QUICK' if args.quick else ''}",
        "",
        f"{datetime.now(LIMA):%Y-%m-%d %H:%M} Lima; {platform.python_implementation()} {platform.python_version()};"
        f" {os.cpu_count()} CPUs; {platform.platform()}. FakeGraph (tests/graph_server.py), the fake connector,"
        f" the app (CLAQUETA_BACKEND=graph) and the load generator each in their own process on 127.0.0.1;"
        f" every Graph HTTP call held {args.latency_ms:.0f} ms (a $batch is one call). {seeded['total']} open"
        f" requests seeded through the store in {seeded['seed_s']:.0f} s. Run took {total_s:.0f} s.",
        "",
        f"## Approval click at {args.latency_ms:.0f} ms per Graph call",
        "",
        "| Activity | n | Throughput (/s) | p50 ms | p95 ms | p99 ms | Failed | Notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, calls in (("serial", lat["serial_calls"]), ("concurrent", lat["concurrent_calls"])):
        r = lat[key]
        notes = r.notes + [f"{calls / max(1, r.count):.1f} Graph calls per click seen, dispatcher included"]
        lines.append(f"| {r.name} | {r.count} | {r.throughput:.1f} | {r.pct(50):.1f} | {r.pct(95):.1f} | "
                     f"{r.pct(99):.1f} | {r.failures} | {'; '.join(notes)} |")
    r = hot["hot"]
    lines.append(f"| {r.name} | {r.count} | {r.throughput:.1f} | {r.pct(50):.1f} | {r.pct(95):.1f} | "
                 f"{r.pct(99):.1f} | {r.failures} | {'; '.join(r.notes)} |")
    lines += [
        "",
        "## Graph calls",
        "",
        "| What | Calls | By route (per unit) |",
        "|---|---:|---|",
        f"| One approval click, whole hot path (dispatcher paused; {len(hot['per_click'])} clicks, min–max"
        f" {lo}–{hi}) | {mean_calls:.1f} | {_routes(by_route, len(hot['per_click']))} |",
        f"| … of which the transition itself (RequestService.act: store.get, then save's PATCH with If-Match) |"
        f" {sum(store_calls) / len(store_calls):.1f} | the answer card is built from what was saved: no other"
        f" call on the hot path |",
        f"| Effects of one transition, delivered afterwards by the dispatcher ({dispatch_n} transitions, 0 ms,"
        f" {hot['dispatch_s']:.1f} s) | {dispatch_total / dispatch_n:.1f} |"
        f" {_routes(hot['dispatch_calls'], dispatch_n)}; {hot['dispatch_sub'] / dispatch_n:.1f} sub-requests in $batch |",
    ]
    for key, label in (("first", "first of the day"), ("again", "same day again (nothing new)")):
        run = rem[key]
        result = f"FAILED ({run['error']})" if run["error"] else f"{run['effects']} reminders, {run['added']} new"
        lines.append(f"| Reminder run over {rem['open']} open requests, {label}: {run['s']:.1f} s at"
                     f" {args.latency_ms:.0f} ms/call; {result} |"
                     f" {sum(run['calls'].values())} | {_routes(run['calls'], 1)}; {run['sub']} sub-requests in $batch |")
    lines += [
        "",
        "| Other | Value |",
        "|---|---:|",
        f"| App start-up on the Graph backend, process start → /healthz 200 | {lat['startup_s']:.2f} s |",
        f"| Peak resident memory of the app after the clicks (VmHWM) | {lat['memory_mb'][0]:.0f} MB |",
        f"| Tracebacks in the app's log during the clicks | {lat['app_errors']} |",
        "",
        "## Targets (issue 7, Graph)",
        "",
        "| Target | Measured | Verdict |",
        "|---|---:|---|",
    ]
    serial, concurrent = lat["serial"], lat["concurrent"]
    checks = [
        (f"Approval click p99 < 1 s at {args.latency_ms:.0f} ms per Graph call (one at a time)",
         f"{serial.pct(99):.0f} ms", serial.pct(99) < TARGETS["approval_p99_ms"]),
        (f"Approval click p99 < 1 s at {args.latency_ms:.0f} ms per Graph call ({args.concurrency} at a time)",
         f"{concurrent.pct(99):.0f} ms", concurrent.pct(99) < TARGETS["approval_p99_ms"]),
        ("At most 3 Graph calls per transition (the whole click)", f"{mean_calls:.1f}",
         hi <= TARGETS["calls_per_transition"]),
        ("At most 3 Graph calls per transition (the transition itself: read + PATCH)",
         f"{sum(store_calls) / len(store_calls):.1f}", max(store_calls) <= TARGETS["calls_per_transition"]),
    ]
    for name, value, ok in checks:
        lines.append(f"| {name} | {value} | {verdict(ok)} |")
    lines.append("")
    return "\n".join(lines)


async def main_graph(args) -> str:
    from app import build
    from graph.client import close_graph_client

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="claqueta-graph-bench-"))
    connector, service_url = start_connector()
    fg = FakeGraphProcess(args.latency_ms)
    components = None
    try:
        await fg.counts()
        print(f"FakeGraph at {fg.info['base_url']}; connector at {service_url}; data under {work}", flush=True)
        await fg.set_latency(0)
        components = build(graph_settings(fg, work / "inproc"))
        hot_n = args.count + 2
        pre14 = hot_n + args.warmup + args.serial + args.concurrent
        print(f"1/4 seeding {pre14 + args.others} open requests through the store…", flush=True)
        t = time.perf_counter()
        requests = await seed_graph(components.store, pre14=pre14, others=args.others, service_url=service_url)
        seeded = {"total": pre14 + args.others, "seed_s": time.perf_counter() - t}
        print("2/4 Graph calls per click (dispatcher paused)…", flush=True)
        hot = await calls_per_click(fg, components, requests[:hot_n], service_url, args.latency_ms, warmup=2)
        print("3/4 approval latency, the app in its own process…", flush=True)
        lat = await app_latency(fg, requests[hot_n:], service_url, work, args)
        print("4/4 reminder run…", flush=True)
        rem = await reminder_run(fg, components, args.latency_ms)
    finally:
        if components is not None:
            await close_graph_client(components.store.client)
        fg.stop()
        connector.terminate()
        connector.wait(timeout=10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return report(args, seeded, hot, lat, rem, time.perf_counter() - started)
