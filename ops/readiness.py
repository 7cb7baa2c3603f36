"""/readyz: the store answers and, on the Microsoft 365 backend, Graph answers and every permission is in place."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

# A failed permission check is run again at most this often (an administrator fixing a grant sees /readyz
# turn green without a restart); a passed one is kept: permissions are not revoked in normal operation.
RECHECK_SECONDS = 30.0
PROBE_KEY = "__readyz__"


class Readiness:
    def __init__(self, store, *, permission_check: Callable[[], Awaitable[list]] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.store = store
        self.permission_check = permission_check
        self._monotonic = monotonic
        self._problems: list | None = None
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_components(cls, components) -> "Readiness":
        settings = components.settings
        if settings.backend != "graph":
            return cls(components.store)
        from graph.permissions import check_permissions

        client = components.store.client  # the SharePoint store's Graph client, shared by every adapter

        async def check() -> list:
            return await check_permissions(client, settings)

        return cls(components.store, permission_check=check)

    async def permissions(self) -> list:
        """The problems found by the last check, checking again when due; [] without Graph."""
        if self.permission_check is None:
            return []
        async with self._lock:
            due = self._problems is None or (
                self._problems and self._monotonic() - (self._checked_at or 0) >= RECHECK_SECONDS)
            if due:
                self._problems = await self.permission_check()
                self._checked_at = self._monotonic()
                for problem in self._problems:
                    log.error("permiso o configuración de Microsoft 365: %s", problem.message)
            return list(self._problems)

    async def startup(self, app: web.Application):
        """cleanup_ctx: the permission check runs right after start-up, off the path of the first requests."""
        task = asyncio.create_task(self._startup_check()) if self.permission_check else None
        yield
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _startup_check(self) -> None:
        try:
            problems = await self.permissions()
        except Exception:  # noqa: BLE001 - /readyz will try again
            log.exception("la comprobación de permisos de Microsoft 365 falló")
            return
        if not problems:
            log.info("permisos de Microsoft 365 comprobados: todo en orden")

    async def report(self) -> tuple[bool, dict]:
        checks: dict[str, dict] = {}
        try:
            await self.store.get_reference(PROBE_KEY)
            checks["almacen"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["almacen"] = {"ok": False, "detalle": f"El almacén de solicitudes no responde ({type(exc).__name__})."}
        if self.permission_check is not None:
            from graph.permissions import NOT_PROBED

            try:
                problems = await self.permissions()
            except Exception as exc:  # noqa: BLE001
                problems = None
                checks["graph"] = {"ok": False, "detalle": f"No se pudo comprobar Microsoft Graph ({type(exc).__name__})."}
            if problems is not None:
                unreachable = [p for p in problems if p.graph_unreachable]
                checks["graph"] = ({"ok": False, "detalle": unreachable[0].message} if unreachable else {"ok": True})
                missing = [p for p in problems if not p.graph_unreachable]
                checks["permisos"] = {"ok": not problems,
                                      "problemas": [{"comprobacion": p.check, "permiso": p.permission,
                                                     "detalle": p.message} for p in missing],
                                      "sin_comprobar": NOT_PROBED}
        ready = all(check["ok"] for check in checks.values())
        return ready, {"status": "ready" if ready else "not_ready", "checks": checks}

    async def serve(self, request: web.Request) -> web.Response:
        ready, body = await self.report()
        return web.json_response(body, status=200 if ready else 503, dumps=_dumps)


def _dumps(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
