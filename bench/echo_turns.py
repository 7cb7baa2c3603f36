"""Throughput of one text reply per message: stock botbuilder 4.17.1 vs the bot/ platform layer (prints figures)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODES = {
    "stock": "botbuilder 4.17.1 as in its samples (CloudAdapter.process, new connector client per turn)",
    "frozenset": "stock + only the safe_codes frozenset patch",
    "claqueta": "bot.server.create_app (frozenset + connector clients reused per service URL)",
    "bare": "plain aiohttp handler doing the same HTTP work (upper bound)",
}


# ── the servers under test (each runs in its own process) ──

def _serve(mode: str, port: int) -> None:
    from aiohttp import web

    if mode == "bare":
        import aiohttp

        async def bare_app() -> web.Application:
            app = web.Application()
            session_key = web.AppKey("session", aiohttp.ClientSession)

            async def session_ctx(app):
                app[session_key] = aiohttp.ClientSession()
                yield
                await app[session_key].close()

            async def messages(request):
                activity = await request.json()
                url = (f"{activity['serviceUrl'].rstrip('/')}/v3/conversations/{activity['conversation']['id']}"
                       f"/activities/{activity['id']}")
                reply = {"type": "message", "text": f"eco: {activity['text']}", "replyToId": activity["id"],
                         "conversation": activity["conversation"], "from": activity["recipient"],
                         "recipient": activity["from"]}
                async with request.app[session_key].post(url, json=reply) as response:
                    await response.read()
                return web.Response(status=200)

            async def healthz(request):
                return web.json_response({"status": "ok"})

            app.cleanup_ctx.append(session_ctx)
            app.router.add_post("/api/messages", messages)
            app.router.add_get("/healthz", healthz)
            return app

        web.run_app(bare_app(), host="127.0.0.1", port=port, access_log=None, print=None)
        return

    if mode == "claqueta":
        from bot.activity_handler import ClaquetaActivityHandler
        from bot.server import create_app
        from config.settings import Settings

        class Echo(ClaquetaActivityHandler):
            async def on_text_message(self, turn_context, text):
                await turn_context.send_activity(f"eco: {text}")

        app = create_app(Settings(_env_file=None, local_mode=True, app_id=""), Echo())
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
        return

    # stock / frozenset: the echo bot of botbuilder's samples, nothing of bot/ imported.
    from types import SimpleNamespace

    from botbuilder.core import ActivityHandler, MessageFactory
    from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

    if mode == "frozenset":
        from msrest.universal_http.requests import ClientRetryPolicy

        ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)

    config = SimpleNamespace(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))

    class Echo(ActivityHandler):
        async def on_message_activity(self, turn_context):
            await turn_context.send_activity(MessageFactory.text(f"eco: {turn_context.activity.text}"))

    bot = Echo()

    async def messages(request):
        return await adapter.process(request, bot)

    async def healthz(request):
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ── the load generator ──

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20.0, poll: float = 0.1) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(poll)
    raise RuntimeError(f"{url} not ready after {timeout}s")


async def _load(bot_url: str, service_url: str, count: int, concurrency: int) -> tuple[float, int]:
    import aiohttp

    from tests import activities

    bodies = [json.dumps(activities.message(f"mensaje {i}", service_url=service_url)) for i in range(count)]
    failures = 0
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            nonlocal failures
            for body in queue:
                async with session.post(bot_url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status >= 300:
                        failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return count / elapsed, failures


async def _bench(modes: list[str], count: int, concurrency: int, warmup: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    connector = subprocess.Popen([sys.executable, "-m", "tests.fake_connector", "--port", "0"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, text=True)
    try:
        service_url = json.loads(connector.stdout.readline())["service_url"]
        print(f"{os.cpu_count()} CPUs, {count} messages per mode, {concurrency} concurrent, "
              f"{warmup} warm-up messages; fake connector at {service_url}")
        for mode in modes:
            port = _free_port()
            server = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--port", str(port)], cwd=ROOT,
                                      env=env, stderr=subprocess.DEVNULL)
            try:
                await _wait_ready(f"http://127.0.0.1:{port}/healthz", server)
                bot_url = f"http://127.0.0.1:{port}/api/messages"
                await _load(bot_url, service_url, warmup, concurrency)
                rate, failures = await _load(bot_url, service_url, count, concurrency)
                print(f"  {mode:<10} {rate:8.1f} messages/s  ({failures} failed)  - {MODES[mode]}", flush=True)
            finally:
                server.terminate()
                server.wait(timeout=10)
    finally:
        connector.terminate()
        connector.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port)
    else:
        asyncio.run(_bench(args.modes.split(","), args.messages, args.concurrency, args.warmup))


if __name__ == "__main__":
    main()
