"""The deployment files agree with the app: Bicep app settings are real settings, the image holds what app.py imports."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic import AliasChoices

from config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
BICEP = ROOT / "deploy" / "azure" / "main.bicep"
PARAMETERS = ROOT / "deploy" / "azure" / "main.parameters.json"
DOCKERFILE = ROOT / "Dockerfile"
# Settings that App Service itself reads, not the app.
PLATFORM_PREFIXES = ("WEBSITES_", "APPLICATIONINSIGHTS_")


def setting_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif alias:
            names.add(str(alias))
    return names


def bicep_app_settings() -> dict[str, str]:
    text = BICEP.read_text(encoding="utf-8")
    block = text[text.index("var baseAppSettings = ["):text.index("var schedulerAppSettings")]
    block += text[text.index("var schedulerAppSettings"):text.index("var extraAppSettingsList")]
    return dict(re.findall(r"name: '([A-Za-z_]+)'\s+value: (.+)", block))


def test_every_app_setting_the_bicep_writes_is_one_the_app_reads():
    unknown = [name for name in bicep_app_settings()
               if not name.startswith(PLATFORM_PREFIXES) and name not in setting_names()]
    assert not unknown, f"la plantilla Bicep escribe configuraciones que la app no lee: {unknown}"


def deployed_environment() -> dict[str, str]:
    """The app settings the template gives the web app, with main.parameters.json's values filled in."""
    params = {k: v["value"] for k, v in json.loads(PARAMETERS.read_text(encoding="utf-8"))["parameters"].items()}
    stand_ins = {"tenantId": "7d1e0a51-0000-4000-8000-0000000000aa", "graphClientId": params["botAppId"],
                 "publicHost": "claqueta-abc123.azurewebsites.net"}
    env = {}
    for name, expression in bicep_app_settings().items():
        expression = expression.strip()
        if name.startswith(PLATFORM_PREFIXES):
            continue
        if expression.startswith("'@Microsoft.KeyVault("):
            env[name] = "secreto-de-key-vault"
        elif re.fullmatch(r"'[^'$]*'", expression):
            env[name] = expression[1:-1]
        elif (call := re.fullmatch(r"string\((\w+)\)", expression)):
            env[name] = json.dumps(params[call.group(1)])
        else:
            env[name] = str(params[expression]) if expression in params else stand_ins[expression]
    return env


def test_the_deployed_settings_start_the_bot_on_the_graph_backend(monkeypatch, tmp_path):
    env = deployed_environment()
    assert env["CLAQUETA_BACKEND"] == "graph" and env["CLAQUETA_LOCAL_MODE"] == "false"
    # The container's paths (/var/lib/claqueta, /app/config/people.yaml) are swapped for this machine's.
    env["CLAQUETA_DATA_DIR"] = str(tmp_path / "data")
    assert env["CLAQUETA_PEOPLE_FILE"] == "config/people.yaml"
    env["CLAQUETA_PEOPLE_FILE"] = str(ROOT / "config" / "people.example.yaml")
    monkeypatch.chdir(tmp_path)  # no .env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.backend == "graph" and not settings.is_local and settings.app_type == "SingleTenant"
    assert set(settings.graph_role_groups) == {"COORDINATOR", "PRESS", "COMMS", "DESIGNER", "OCOIM_HEAD",
                                              "ADMIN_ANALYST"}
    # The same wiring the container runs (graph adapters; nothing is sent until a request comes).
    import app

    components = app.build(settings)
    assert type(components.store).__name__ == "SharePointRequestStore"
    assert type(components.directory).__name__ == "GraphDirectory"


def test_secrets_reach_the_app_only_as_key_vault_references():
    settings = bicep_app_settings()
    for name in ("MicrosoftAppPassword", "GRAPH_CLIENT_SECRET", "CLAQUETA_SCHEDULER_TOKEN"):
        assert settings[name].startswith("'@Microsoft.KeyVault(SecretUri="), name
    text = BICEP.read_text(encoding="utf-8")
    for secret in ("botAppPassword", "graphClientSecret", "schedulerToken"):
        assert re.search(rf"@secure\(\)\s+param {secret} string", text), secret


def test_parameters_file_sets_every_required_parameter_and_no_secret():
    text = BICEP.read_text(encoding="utf-8")
    declared = dict(re.findall(r"^param (\w+) (\w+)(?: =)?", text, flags=re.M))
    required = {name for name in declared if not re.search(rf"^param {name} \w+ =", text, flags=re.M)}
    secure = set(re.findall(r"@secure\(\)\s+param (\w+)", text))
    given = set(json.loads(PARAMETERS.read_text(encoding="utf-8"))["parameters"])
    assert given <= set(declared), f"parámetros que main.bicep no declara: {given - set(declared)}"
    assert required - secure <= given, f"faltan en main.parameters.json: {required - secure - given}"
    assert not given & secure, "los secretos no van en el archivo de parámetros"


def test_bot_is_single_tenant_with_teams_and_outlook_channels_and_two_instances():
    text = BICEP.read_text(encoding="utf-8")
    assert "msaAppType: 'SingleTenant'" in text and "msaAppTenantId: tenantId" in text
    assert "channelName: 'MsTeamsChannel'" in text and "channelName: 'OutlookChannel'" in text
    assert "endpoint: 'https://${publicHost}/api/messages'" in text
    assert re.search(r"param instanceCount int = ([2-9])", text)
    assert "healthCheckPath: '/healthz'" in text
    assert "enableRbacAuthorization: true" in text


def test_dockerfile_runs_app_py_as_a_non_root_user_with_a_health_check():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", text, flags=re.M)
    user = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.M)
    assert re.search(r"^EXPOSE 3978$", text, flags=re.M)
    assert re.search(r'^CMD \["python", "app\.py"\]$', text, flags=re.M)
    assert Settings.model_fields["port"].default == 3978


def _docker_context(target: Path) -> None:
    """Copy the build context as `docker build` would see it (.dockerignore's plain patterns)."""
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def ignored(relative: str) -> bool:
        return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(relative, p.removeprefix("**/"))
                   or fnmatch.fnmatch(Path(relative).name, p.removeprefix("**/")) for p in patterns)

    for folder, dirs, files in os.walk(ROOT):
        base = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d)]
        for name in files:
            if not ignored(prefix + name):
                (target / prefix).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target / prefix / name)


def test_the_image_holds_everything_app_py_imports(tmp_path):
    context = tmp_path / "context"
    _docker_context(context)
    assert (context / "app.py").is_file() and (context / "requirements.txt").is_file()
    assert not (context / "tests").exists() and not (context / ".venv").exists()
    # Build the components in the copied tree alone: every module and data file app.py needs must be there.
    code = ("import app, deploy.sharepoint, os; assert os.path.dirname(app.__file__) == os.getcwd(); "
            "from config.settings import load_settings; "
            "c = app.build(load_settings(_env_file=None, data_dir='" + str(tmp_path / "data") + "')); "
            "print(type(c.bot).__name__)")
    # `-c` puts the working directory first on sys.path; the minimal environment keeps the repo's .env out.
    result = subprocess.run([sys.executable, "-c", code], cwd=context, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ClaquetaBot"


def test_the_guide_names_only_real_settings_parameters_and_commands():
    guide = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\b((?:CLAQUETA|GRAPH|SHAREPOINT)_[A-Z_]+|Microsoft(?:App[A-Za-z]+))\b", guide))
    assert named and not named - setting_names(), f"la guía nombra configuraciones inexistentes: {named - setting_names()}"
    declared = set(re.findall(r"^param (\w+)", BICEP.read_text(encoding="utf-8"), flags=re.M))
    passed = set(re.findall(r"--parameters (\w+)=", guide)) | set(re.findall(r"`(\w+)=", guide))
    assert passed and not passed - declared - named, f"parámetros que main.bicep no declara: {passed - declared}"
    for module in re.findall(r"python -m (deploy\.\w+)", guide):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
    assert "python -m deploy.sharepoint provision --check" in guide
