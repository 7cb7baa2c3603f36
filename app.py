"""Composition root: builds every part from the settings, wires them, and runs the bot (`python app.py`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
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


def build(settings: Settings, *, notifier=None) -> Components:
    """Every object the app needs, on the backend the settings choose."""
    from bot.claqueta_bot import ClaquetaBot
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
    store = SqliteRequestStore(data / "claqueta.db")
    directory = YamlDirectory(settings.people_file, data / "directory-overrides.json", match_names=settings.is_local)
    service = RequestService(proc, store, directory, clock, deadlines.lead_time)
    holder: dict = {}
    if notifier is None:
        from bot.notifier import TeamsNotifier

        notifier = TeamsNotifier(proc, service, store, directory, lambda: holder["proactive"])
    dispatcher = EffectDispatcher(
        proc, store, directory, clock, notifier=notifier,
        mailer=EmlMailer(data / "correos", sender=settings.office_mailbox or "ocoim@proinversion.gob.pe"),
        calendar=IcsCalendar(data / "reuniones", clock=clock), files=FolderFileStore(data / "archivos"),
    )
    bot = ClaquetaBot(proc, service, store, directory, is_local=settings.is_local, on_transition=dispatcher.wake,
                      calendar=dispatcher.calendar)
    components = Components(settings, deadlines, store, directory, clock, service, dispatcher, bot)
    components.proactive_holder = holder  # type: ignore[attr-defined]
    return components


def create_web_app(components: Components) -> web.Application:
    from bot.server import NOTIFIER_KEY, create_app

    app = create_app(components.settings, components.bot)

    async def background(app: web.Application):
        components.proactive_holder["proactive"] = app[NOTIFIER_KEY]  # type: ignore[attr-defined]
        task = asyncio.create_task(components.dispatcher.run_forever())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await components.store.close()

    app.cleanup_ctx.append(background)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="Claqueta: bot de producción de piezas audiovisuales")
    parser.add_argument("--port", type=int, help="puerto HTTP (por defecto 3978 o PORT)")
    parser.add_argument("--playground", action="store_true",
                        help="abre también el Microsoft 365 Agents Playground (necesita Node.js)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(**({"port": args.port} if args.port else {}))
    except SettingsError as exc:
        print(f"No se puede iniciar: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    components = build(settings)
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
