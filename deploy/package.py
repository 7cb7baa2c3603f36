"""Builds the Teams app package (manifest.json + two icons in a .zip) from the template and the settings.

    python -m deploy.package                                   # writes deploy/build/claqueta.zip
    python -m deploy.package --output otra/ruta.zip --version 1.0.1

Reads MicrosoftAppId (the bot's app id), CLAQUETA_PUBLIC_HOST (the host name Teams reaches the bot at)
and, optionally, CLAQUETA_TEAMS_APP_ID (the Teams app id; by default the bot's app id) from the
environment or `.env`, like the bot itself. Raise --version for every new upload: Teams only replaces an
app whose version grew.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from pathlib import Path

from config.settings import Settings, SettingsError, load_settings

APP_PACKAGE_DIR = Path(__file__).resolve().parent / "appPackage"
TEMPLATE = APP_PACKAGE_DIR / "manifest.template.json"
ICONS = ("color.png", "outline.png")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "build" / "claqueta.zip"
DEFAULT_VERSION = "1.0.0"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})+$")
_PLACEHOLDER = re.compile(r"\$\{\{([A-Z_]+)\}\}")
# Zip entries get a fixed date so that the same inputs give the same bytes.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class PackageError(ValueError):
    """The package cannot be built; the message (Spanish) names the setting to fix."""


def public_host(value: str) -> str:
    """The bare host name from CLAQUETA_PUBLIC_HOST, tolerating a pasted https:// and trailing slash."""
    host = value.strip()
    host = re.sub(r"^https?://", "", host, flags=re.IGNORECASE).rstrip("/")
    if not host:
        raise PackageError("Falta CLAQUETA_PUBLIC_HOST: el nombre de host público del bot "
                           "(por ejemplo claqueta-ocoim.azurewebsites.net).")
    if not _HOST.match(host):
        raise PackageError(f"CLAQUETA_PUBLIC_HOST no es un nombre de host válido: «{value}». Escriba solo el "
                           "host, sin ruta ni puerto (por ejemplo claqueta-ocoim.azurewebsites.net).")
    return host.lower()


def manifest_values(settings: Settings, version: str = DEFAULT_VERSION) -> dict[str, str]:
    """The placeholder values for the template, or PackageError naming what is missing or malformed."""
    bot_id = settings.app_id.strip()
    if not bot_id:
        raise PackageError("Falta MicrosoftAppId: el identificador de aplicación (client id) del bot, "
                           "que se obtiene al registrar la aplicación en Microsoft Entra ID.")
    if not _GUID.match(bot_id):
        raise PackageError(f"MicrosoftAppId no es un GUID: «{bot_id}».")
    app_id = settings.teams_app_id.strip() or bot_id
    if not _GUID.match(app_id):
        raise PackageError(f"CLAQUETA_TEAMS_APP_ID no es un GUID: «{app_id}».")
    if not _SEMVER.match(version):
        raise PackageError(f"La versión del paquete debe tener la forma 1.2.3; se recibió «{version}».")
    return {"APP_ID": app_id.lower(), "BOT_ID": bot_id.lower(), "BOT_DOMAIN": public_host(settings.public_host),
            "APP_VERSION": version}


def render_manifest(values: dict[str, str], template: Path = TEMPLATE) -> dict:
    """The manifest with every ${{NAME}} replaced; an unknown placeholder is an error, not a silent blank."""
    text = template.read_text(encoding="utf-8")
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if unknown:
        raise PackageError(f"La plantilla {template.name} usa valores que no se conocen: {', '.join(unknown)}.")
    # Values are JSON-escaped so that no setting can break out of its string.
    text = _PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)])[1:-1], text)
    return json.loads(text)


def build_package(settings: Settings, output: Path = DEFAULT_OUTPUT, *, version: str = DEFAULT_VERSION,
                  app_package_dir: Path = APP_PACKAGE_DIR) -> Path:
    """Write the .zip Teams takes (manifest.json and the icons at its root) and return its path."""
    manifest = render_manifest(manifest_values(settings, version), app_package_dir / TEMPLATE.name)
    for icon in ICONS:
        if not (app_package_dir / icon).is_file():
            raise PackageError(f"Falta el ícono {icon} en {app_package_dir}: ejecute "
                               "`python deploy/appPackage/make_icons.py`.")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as package:
        _add(package, "manifest.json", (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
        for icon in ICONS:
            _add(package, icon, (app_package_dir / icon).read_bytes())
    partial.replace(output)
    return output


def _add(package: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    package.writestr(info, data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.package",
                                     description="Crea el paquete de la aplicación de Teams (.zip) de Claqueta.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="ruta del .zip (por defecto deploy/build/claqueta.zip)")
    parser.add_argument("--version", default=DEFAULT_VERSION,
                        help="versión de la aplicación (súbala en cada actualización; por defecto %(default)s)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        path = build_package(settings, args.output, version=args.version)
    except (PackageError, SettingsError) as exc:
        print(f"No se puede crear el paquete: {exc}", file=sys.stderr)
        return 2
    values = manifest_values(settings, args.version)
    print(f"Paquete creado: {path}\n  aplicación de Teams {values['APP_ID']}, bot {values['BOT_ID']}, "
          f"versión {values['APP_VERSION']}\n  mensajería: https://{values['BOT_DOMAIN']}/api/messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
