"""The Teams app package: the manifest validates against Microsoft's schema, the icons fit, the build refuses bad settings."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from bot.claqueta_bot import TEXT_COMMANDS
from config.settings import Settings
from deploy import package
from deploy.package import PackageError, build_package, manifest_values, render_manifest

SCHEMA = Path(__file__).resolve().parent / "schemas" / "teams-manifest-1.30.json"
BOT_ID = "0b5c2b3e-1111-4222-8333-944455556666"
HOST = "claqueta-ocoim.azurewebsites.net"


def settings(**values) -> Settings:
    base = {"app_id": BOT_ID, "public_host": HOST}
    base.update(values)
    return Settings(_env_file=None, **base)


def rgba_pixels(image: Image.Image) -> list[tuple[int, int, int, int]]:
    data = image.convert("RGBA").tobytes()
    return [tuple(data[i:i + 4]) for i in range(0, len(data), 4)]


@pytest.fixture
def built(tmp_path) -> zipfile.ZipFile:
    path = build_package(settings(), tmp_path / "claqueta.zip", version="1.2.3")
    with zipfile.ZipFile(path) as archive:
        yield archive


@pytest.fixture
def manifest(built) -> dict:
    return json.loads(built.read("manifest.json"))


def test_manifest_validates_against_the_official_teams_schema(manifest):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    # The vendored schema is the one the manifest declares (bumping one without the other fails here).
    assert schema["properties"]["manifestVersion"]["const"] == manifest["manifestVersion"]
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")


def test_schema_rejects_a_broken_manifest(manifest):
    # Guards the guard: the validator really reads the schema (a scope Teams does not know is refused).
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(manifest))
    broken["bots"][0]["scopes"].append("meetings")
    del broken["developer"]["privacyUrl"]
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert len(list(validator.iter_errors(broken))) == 2


def test_manifest_carries_the_ids_host_and_version_from_the_settings(manifest):
    assert manifest["id"] == BOT_ID
    assert manifest["version"] == "1.2.3"
    bot = manifest["bots"][0]
    assert bot["botId"] == BOT_ID
    assert manifest["validDomains"] == [HOST]
    assert manifest["webApplicationInfo"] == {"id": BOT_ID, "resource": f"api://botid-{BOT_ID}"}
    assert "${{" not in json.dumps(manifest)


def test_a_separate_teams_app_id_is_used_when_set(tmp_path):
    teams_id = "7d0c9a58-aaaa-4bbb-8ccc-0123456789ab"
    values = manifest_values(settings(teams_app_id=teams_id))
    manifest = render_manifest(values)
    assert manifest["id"] == teams_id and manifest["bots"][0]["botId"] == BOT_ID


def test_bot_is_offered_in_chat_team_and_group_chat_in_spanish_with_files(manifest):
    bot = manifest["bots"][0]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert bot["supportsFiles"] is True
    assert manifest["name"]["short"] == "Claqueta"
    assert manifest["localizationInfo"]["defaultLanguageTag"].startswith("es")
    assert "pieza" in manifest["description"]["short"] and "OCOIM" in manifest["description"]["full"]
    covered = {scope for command_list in bot["commandLists"] for scope in command_list["scopes"]}
    assert covered == {"personal", "team", "groupChat"}


def test_every_listed_command_is_one_the_bot_understands(manifest):
    # Teams sends a command's title when a person picks it; numbered commands get their number typed after.
    personal = next(c for c in manifest["bots"][0]["commandLists"] if "personal" in c["scopes"])
    titles = [command["title"] for command in personal["commands"]]
    assert titles == ["ayuda", "nueva solicitud", "mis solicitudes", "mis pendientes", "estado", "historial",
                      "agenda"]
    for command_list in manifest["bots"][0]["commandLists"]:
        for command in command_list["commands"]:
            text = command["title"] + (" 12" if command["title"] in ("estado", "historial") else "")
            assert any(c.pattern.match(text) for c in TEXT_COMMANDS), f"el bot no entiende «{text}»"
            assert command["description"]


def test_package_holds_exactly_the_manifest_and_the_two_icons_at_its_root(built):
    assert sorted(built.namelist()) == ["color.png", "manifest.json", "outline.png"]
    for name in ("color.png", "outline.png"):
        assert built.read(name) == (package.APP_PACKAGE_DIR / name).read_bytes()


def test_color_icon_is_192_square_and_opaque(built):
    icon = Image.open(io.BytesIO(built.read("color.png")))
    assert icon.format == "PNG" and icon.size == (192, 192)
    rgba = icon.convert("RGBA")
    assert rgba.getextrema()[3] == (255, 255)  # no transparent corner: Teams shows it on any background
    assert len(set(rgba_pixels(rgba))) > 2  # a glyph, not a flat square


def test_outline_icon_is_32_square_white_on_transparent(built):
    icon = Image.open(io.BytesIO(built.read("outline.png")))
    assert icon.format == "PNG" and icon.size == (32, 32) and icon.mode == "RGBA"
    pixels = rgba_pixels(icon)
    not_white = [p for p in pixels if p[3] > 0 and p[:3] != (255, 255, 255)]
    assert not not_white, f"{len(not_white)} píxeles visibles que no son blancos"
    assert any(p[3] == 0 for p in pixels), "el fondo debe ser transparente"
    assert sum(p[3] == 255 for p in pixels) > 60, "el dibujo debe verse"


def test_build_refuses_without_an_app_id_and_writes_nothing(tmp_path):
    output = tmp_path / "claqueta.zip"
    with pytest.raises(PackageError, match="MicrosoftAppId"):
        build_package(settings(app_id=""), output)
    assert not output.exists()


def test_build_refuses_without_a_public_host_or_with_a_malformed_one(tmp_path):
    with pytest.raises(PackageError, match="Falta CLAQUETA_PUBLIC_HOST"):
        build_package(settings(public_host=""), tmp_path / "a.zip")
    with pytest.raises(PackageError, match="CLAQUETA_PUBLIC_HOST no es un nombre de host"):
        build_package(settings(public_host="claqueta.example.com/api/messages"), tmp_path / "b.zip")
    with pytest.raises(PackageError, match="MicrosoftAppId no es un GUID"):
        build_package(settings(app_id="claqueta"), tmp_path / "c.zip")
    with pytest.raises(PackageError, match="1.2.3"):
        build_package(settings(), tmp_path / "d.zip", version="v2")
    assert list(tmp_path.iterdir()) == []


def test_a_pasted_url_is_reduced_to_its_host():
    assert manifest_values(settings(public_host=f"https://{HOST.upper()}/"))["BOT_DOMAIN"] == HOST


def test_command_line_names_the_missing_setting_in_spanish(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("MicrosoftAppId", "MICROSOFT_APP_ID", "CLAQUETA_PUBLIC_HOST", "CLAQUETA_LOCAL_MODE"):
        monkeypatch.delenv(name, raising=False)
    output = tmp_path / "claqueta.zip"
    assert package.main(["--output", str(output)]) == 2
    assert "No se puede crear el paquete: Falta MicrosoftAppId" in capsys.readouterr().err
    assert not output.exists()

    monkeypatch.setenv("MicrosoftAppId", BOT_ID)
    monkeypatch.setenv("CLAQUETA_PUBLIC_HOST", HOST)
    assert package.main(["--output", str(output), "--version", "2.0.0"]) == 0
    assert f"https://{HOST}/api/messages" in capsys.readouterr().out
    with zipfile.ZipFile(output) as archive:
        assert json.loads(archive.read("manifest.json"))["version"] == "2.0.0"


def test_same_settings_build_the_same_bytes(tmp_path):
    first = build_package(settings(), tmp_path / "1.zip").read_bytes()
    second = build_package(settings(), tmp_path / "2.zip").read_bytes()
    assert first == second
