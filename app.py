"""Composition root: builds every part from the settings, wires them, and runs the bot (`python app.py`)."""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from config.deadlines import Deadlines, load_deadlines
from config.settings import Settings, SettingsError, load_settings
from procedure.definition import PROCEDURE
from procedure.validation import validate
from services.dispatcher import EffectDispatcher
from services.reminders import ReminderJob
from services.requests import RequestService

log = logging.getLogger("claqueta")

PLAYGROUND = "@microsoft/m365agentsplayground@0.2.28"


@dataclass
class Components:
    settings: Settings
    deadlines: Deadlines
    store: object
    directory: object
    clock: object
    service: RequestService
    dispatcher: EffectDispatcher
    bot: object
    reminders: ReminderJob
    exports: "LocalExports"


class LocalExports:
    """Excel exports kept under the data folder and served by the bot at an unguessable address."""

    def __init__(self, folder: Path, settings: Settings):
        self.folder = folder
        host = settings.public_host or f"localhost:{settings.port}"
        self.base_url = f"{'http' if settings.is_local else 'https'}://{host}/exportes"

    async def publish(self, name: str, content: bytes) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(18)
        (self.folder / f"{token}--{name}").write_bytes(content)
        return f"{self.base_url}/{token}/{name}"

    async def serve(self, request: web.Request) -> web.StreamResponse:
        token, name = request.match_info["token"], request.match_info["name"]
        path = self.folder / f"{token}--{name}"
        if "/" in token or ".." in token or not path.is_file():
            raise web.HTTPNotFound(text="El archivo no existe o ya no está disponible.")
        return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def build(settings: Settings, *, notifier=None) -> Components:
    """Every object the app needs, on the backend the settings choose."""
    from bot.claqueta_bot import ClaquetaBot
    from cards.outlook import outlook_approval_card
    from local.calendar import IcsCalendar
    from local.clock import FixedClock, SystemClock
    from local.directory import YamlDirectory
    from local.files import FolderFileStore
    from local.mailer import EmlMailer
    from local.sqlite_store import SqliteRequestStore

    proc = validate(PROCEDURE)
    deadlines = load_deadlines(settings.deadlines_file)
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    clock = FixedClock(settings.now) if settings.now else SystemClock()
    if settings.backend == "graph":
        store, directory, mailer, calendar, files, publish = _graph_adapters(settings, clock)
    else:
        store = SqliteRequestStore(data / "claqueta.db")
        directory = YamlDirectory(settings.people_file, data / "directory-overrides.json",
                                  match_names=settings.is_local)
        mailer = EmlMailer(data / "correos", sender=settings.office_mailbox or "ocoim@proinversion.gob.pe")
        calendar = IcsCalendar(data / "reuniones", clock=clock)
        files = FolderFileStore(data / "archivos")
        publish = None
    service = RequestService(proc, store, directory, clock, deadlines.lead_time)
    holder: dict = {}
    if notifier is None:
        from bot.notifier import TeamsNotifier

        notifier = TeamsNotifier(proc, service, store, directory, lambda: holder["proactive"])
    originator = settings.outlook_originator_id
    # With an Outlook provider registered, the email asking a director for conformity carries the card.
    approval_card = (None if not originator else
                     lambda request, director, tail: outlook_approval_card(proc, request, director, originator, tail))
    dispatcher = EffectDispatcher(proc, store, directory, clock, notifier=notifier, mailer=mailer,
                                  calendar=calendar, files=files, lease_seconds=settings.effect_lease_seconds,
                                  approval_card=approval_card)
    reminders = ReminderJob(proc, store, directory, clock, deadlines)
    exports = LocalExports(data / "exportes", settings)
    bot = ClaquetaBot(proc, service, store, directory, is_local=settings.is_local,
                      on_transition=_counted(dispatcher.wake),
                      calendar=calendar, reminders=reminders, deadlines=deadlines,
                      publish_export=publish or exports.publish, outlook_originator=originator)
    components = Components(settings, deadlines, store, directory, clock, service, dispatcher, bot, reminders,
                            exports)
    components.proactive_holder = holder  # type: ignore[attr-defined]
    return components


def _counted(wake):
    """The bot calls this after each transition it saves: count it (ops.telemetry), then wake the dispatcher."""
    from ops import telemetry

    def on_transition() -> None:
        telemetry.count_transition()
        wake()
    return on_transition


REMINDER_INTERVAL_SECONDS = 300
REMINDER_START_DELAY_SECONDS = 2.0


async def run_reminders(components: Components) -> int:
    """One reminder run: stores today's reminders and digest (never twice) and wakes the dispatcher."""
    run = await components.reminders.run_once()
    if run.added:
        components.dispatcher.wake()
    return len(run.added)


async def _reminder_schedule(components: Components, interval: float = REMINDER_INTERVAL_SECONDS) -> None:
    # Cheap and idempotent: running it every few minutes on every instance sends each reminder once.
    # The first run waits for the server to answer: start-up (and /healthz) must not wait for it.
    await asyncio.sleep(REMINDER_START_DELAY_SECONDS)
    while True:
        try:
            await run_reminders(components)
        except Exception:  # a failed run is retried at the next tick
            log.exception("reminder run failed")
        await asyncio.sleep(interval)


def _graph_adapters(settings: Settings, clock):
    """The Microsoft 365 backend: SharePoint lists, the office mailbox and calendar, the document library."""
    from graph.calendar import GraphCalendar
    from graph.client import build_graph_client, validate_graph_settings
    from graph.directory import GraphDirectory
    from graph.files import GraphFileStore
    from graph.mail import GraphMailer
    from graph.sharepoint_store import SharePointRequestStore
    from local.directory import load_people_file

    validate_graph_settings(settings)
    client = build_graph_client(settings)
    # Areas and their names come from the same people file as locally; roles come from Entra groups.
    people = load_people_file(settings.people_file)
    areas = {code: area.name for code, area in people.areas.items()}
    directors = settings.graph_area_directors or {code: a.director for code, a in people.areas.items() if a.director}
    files = GraphFileStore(client, settings.sharepoint_drive_id)

    async def publish(name: str, content: bytes) -> str:
        return (await files.put("Exportes", name, content))["url"]

    return (SharePointRequestStore(client, settings.sharepoint_site_id),
            GraphDirectory(client, settings.graph_role_groups, directors, areas),
            GraphMailer(client, settings.office_mailbox), GraphCalendar(client, settings.office_mailbox, clock=clock),
            files, publish)


def create_web_app(components: Components, *, schedule_reminders: bool = True,
                   dispatch_effects: bool = True) -> web.Application:
    from bot.server import NOTIFIER_KEY, create_app

    async def trigger_reminders(request: web.Request) -> web.Response:
        """For an external scheduler (several instances): POST with `Authorization: Bearer <token>`."""
        expected = components.settings.scheduler_token.get_secret_value()
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return web.json_response({"error": "no autorizado"}, status=401)
        return web.json_response({"added": await run_reminders(components)})

    from ops.readiness import Readiness

    readiness = Readiness.for_components(components)
    routes = [web.post("/api/jobs/reminders", trigger_reminders), web.get("/readyz", readiness.serve),
              web.get("/exportes/{token}/{name}", components.exports.serve)]
    app = create_app(components.settings, components.bot, extra_routes=routes)

    async def background(app: web.Application):
        components.proactive_holder["proactive"] = app[NOTIFIER_KEY]  # type: ignore[attr-defined]
        tasks = [asyncio.create_task(components.dispatcher.run_forever())] if dispatch_effects else []
        if schedule_reminders:
            tasks.append(asyncio.create_task(_reminder_schedule(components)))
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await components.store.close()

    app.cleanup_ctx.append(background)
    app.cleanup_ctx.append(readiness.startup)  # the permission check on Graph, logged and shown by /readyz
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="Claqueta: bot de producción de piezas audiovisuales")
    parser.add_argument("--port", type=int, help="puerto HTTP (por defecto 3978 o PORT)")
    parser.add_argument("--playground", action="store_true",
                        help="abre también el Microsoft 365 Agents Playground (necesita Node.js)")
    parser.add_argument("job", nargs="?", choices=["reminders"],
                        help="«reminders --once»: registra los recordatorios del día y termina")
    parser.add_argument("--once", action="store_true", help="con «reminders»: una sola ejecución")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(**({"port": args.port} if args.port else {}))
    except SettingsError as exc:
        print(f"No se puede iniciar: {exc}", file=sys.stderr)
        return 2
    from ops import logging as ops_logging, telemetry

    ops_logging.configure(settings)
    telemetry.configure(settings)
    components = build(settings)
    if args.job == "reminders":
        if not args.once:
            parser.error("use «reminders --once»; el bot en marcha ya los programa cada pocos minutos")
        added = asyncio.run(_reminders_once(components))
        print(f"Recordatorios registrados: {added}. El bot en marcha los entrega.")
        return 0
    log.info("Claqueta en http://localhost:%d/api/messages (%s; datos en %s)", settings.port,
             "modo local, sin inquilino" if settings.is_local else "autenticado", settings.data_dir.resolve())
    playground = _start_playground(settings.port) if args.playground else None
    try:
        web.run_app(create_web_app(components), host="0.0.0.0" if not settings.is_local else "127.0.0.1",
                    port=settings.port, print=None)
    finally:
        if playground is not None:
            playground.terminate()
    return 0


async def _reminders_once(components: Components) -> int:
    try:
        return await run_reminders(components)
    finally:
        await components.store.close()


def _start_playground(port: int) -> subprocess.Popen | None:
    npx = shutil.which("npx")
    if npx is None:
        log.error("No se encontró npx (Node.js): no se puede abrir el Agents Playground.")
        return None
    log.info("Abriendo el Microsoft 365 Agents Playground (la primera vez npm lo descarga)…")
    return subprocess.Popen([npx, "-y", PLAYGROUND, "-e", f"http://localhost:{port}/api/messages", "-c", "msteams"],
                            cwd=Path(__file__).parent)


if __name__ == "__main__":
    sys.exit(main())
