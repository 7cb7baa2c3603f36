"""A loopback Bot Connector service (serviceUrl) that records what the bot sends and can answer 429 on demand."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    """One request the bot made to the connector, in arrival order (failed ones included)."""

    method: str
    path: str
    conversation_id: str | None
    activity_id: str | None  # replyToId of a reply, id of an update
    body: Any
    status: int
    has_authorization: bool
    peer_port: int | None


@dataclass
class _Failure:
    status: int
    retry_after: str | None


@dataclass
class FakeConnector:
    host: str = "127.0.0.1"
    port: int = 0
    record_bodies: bool = True
    calls: list[Call] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Condition | None = None

    # ── lifecycle ──

    async def start(self) -> "FakeConnector":
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._post_activity)
        app.router.add_post("/v3/conversations/{conversation_id}/activities/{activity_id}", self._post_activity)
        app.router.add_put("/v3/conversations/{conversation_id}/activities/{activity_id}", self._put_activity)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeConnector":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def service_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # ── what the test controls and reads ──

    def fail_next(self, times: int, status: int = 429, retry_after: str | None = "0") -> None:
        """The next `times` requests (any route) answer `status`, with Retry-After when given."""
        self._failures.extend(_Failure(status, retry_after) for _ in range(times))

    @property
    def delivered(self) -> list[Call]:
        """Activities posted successfully (sends and replies), oldest first."""
        return [c for c in self.calls if c.method == "POST" and c.conversation_id is not None and c.status < 300]

    @property
    def updates(self) -> list[Call]:
        return [c for c in self.calls if c.method == "PUT" and c.status < 300]

    @property
    def created_conversations(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.conversation_id is None and c.status < 300]

    async def wait_for_activities(self, count: int, timeout: float = 5.0) -> list[Call]:
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.delivered) >= count), timeout)
        return self.delivered

    # ── the Bot Connector API ──

    async def _record(self, request: web.Request, status: int, body: Any) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.calls.append(Call(
            method=request.method,
            path=request.path,
            conversation_id=request.match_info.get("conversation_id"),
            activity_id=request.match_info.get("activity_id"),
            body=body if self.record_bodies else None,
            status=status,
            has_authorization="Authorization" in request.headers,
            peer_port=peer[1] if peer else None,
        ))
        async with self._changed:
            self._changed.notify_all()

    async def _answer(self, request: web.Request, ok_body: dict) -> web.Response:
        body = await request.json()
        if self._failures:
            failure = self._failures.pop(0)
            await self._record(request, failure.status, body)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            return web.json_response(
                {"error": {"code": "Throttled" if failure.status == 429 else "Failed", "message": "fake failure"}},
                status=failure.status, headers=headers,
            )
        await self._record(request, 200 if request.method == "PUT" else 201, body)
        return web.json_response(ok_body, status=200 if request.method == "PUT" else 201)

    async def _post_activity(self, request: web.Request) -> web.Response:
        return await self._answer(request, {"id": f"act-{next(self._ids)}"})

    async def _put_activity(self, request: web.Request) -> web.Response:
        return await self._answer(request, {"id": request.match_info["activity_id"]})

    async def _create_conversation(self, request: web.Request) -> web.Response:
        n = next(self._ids)
        return await self._answer(request, {"id": f"a:personal-{n}", "activityId": f"act-{n}",
                                            "serviceUrl": self.service_url})


async def _serve(port: int) -> None:
    connector = FakeConnector(port=port, record_bodies=False)
    await connector.start()
    print(json.dumps({"service_url": connector.service_url}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await connector.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the fake Bot Connector on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    try:
        asyncio.run(_serve(parser.parse_args().port))
    except KeyboardInterrupt:
        pass
