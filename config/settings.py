"""Every setting of the app, read from the environment or `.env`: the only module that reads either."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LIMA = ZoneInfo("America/Lima")
CONFIG_DIR = Path(__file__).resolve().parent


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True)

    # ── Azure Bot registration (the names the Azure portal and Teams Toolkit use) ──
    app_id: str = Field("", validation_alias=AliasChoices("MicrosoftAppId", "MICROSOFT_APP_ID"))
    app_password: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("MicrosoftAppPassword", "MICROSOFT_APP_PASSWORD")
    )
    app_type: Literal["SingleTenant", "MultiTenant", "UserAssignedMSI"] = Field(
        "SingleTenant", validation_alias=AliasChoices("MicrosoftAppType", "MICROSOFT_APP_TYPE")
    )
    app_tenant_id: str = Field("", validation_alias=AliasChoices("MicrosoftAppTenantId", "MICROSOFT_APP_TENANT_ID"))

    # ── Where it runs ──
    # "local": no tenant, anonymous requests accepted (Agents Playground). Default when no app id.
    local_mode: bool | None = Field(None, validation_alias="CLAQUETA_LOCAL_MODE")
    port: int = Field(3978, validation_alias=AliasChoices("PORT", "CLAQUETA_PORT"))
    data_dir: Path = Field(Path("./var"), validation_alias="CLAQUETA_DATA_DIR")
    backend: Literal["local", "graph"] = Field("local", validation_alias="CLAQUETA_BACKEND")
    # Fixes the clock in local mode (ISO date-time in America/Lima), to try days of reminders by hand.
    now: datetime | None = Field(None, validation_alias="CLAQUETA_NOW")
    people_file: Path = Field(CONFIG_DIR / "people.example.yaml", validation_alias="CLAQUETA_PEOPLE_FILE")
    deadlines_file: Path = Field(CONFIG_DIR / "deadlines.yaml", validation_alias="CLAQUETA_DEADLINES_FILE")
    max_body_bytes: int = Field(256 * 1024, validation_alias="CLAQUETA_MAX_BODY_BYTES")
    log_level: str = Field("INFO", validation_alias="CLAQUETA_LOG_LEVEL")
    # "json": one JSON object per line (what Azure collects); "text": for a person at a terminal.
    # Empty: text in local mode, json otherwise.
    log_format: Literal["json", "text"] | None = Field(None, validation_alias="CLAQUETA_LOG_FORMAT")
    # Set (App Service does it from Bicep): traces and metrics go to Application Insights (ops/telemetry.py).
    applicationinsights_connection_string: SecretStr = Field(
        SecretStr(""), validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING")
    # How long a worker holds an effect it is delivering; after a crash, others retry it once this passes.
    effect_lease_seconds: int = Field(60, ge=1, le=3600, validation_alias="CLAQUETA_EFFECT_LEASE_SECONDS")
    # Shared secret for the external scheduler that triggers the reminder job.
    scheduler_token: SecretStr = Field(SecretStr(""), validation_alias="CLAQUETA_SCHEDULER_TOKEN")
    # Host name Teams reaches the bot at (e.g. claqueta.azurewebsites.net): the messaging endpoint is
    # https://<host>/api/messages. Used to build the Teams app package (deploy/package.py).
    public_host: str = Field("", validation_alias="CLAQUETA_PUBLIC_HOST")
    # The Teams app's own id (a GUID); empty means "the same as MicrosoftAppId", the usual choice.
    teams_app_id: str = Field("", validation_alias="CLAQUETA_TEAMS_APP_ID")

    # ── Microsoft Graph (backend "graph") ──
    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", validation_alias="GRAPH_BASE_URL")
    graph_tenant_id: str = Field("", validation_alias="GRAPH_TENANT_ID")
    graph_client_id: str = Field("", validation_alias="GRAPH_CLIENT_ID")
    graph_client_secret: SecretStr = Field(SecretStr(""), validation_alias="GRAPH_CLIENT_SECRET")
    graph_certificate_path: Path | None = Field(None, validation_alias="GRAPH_CERTIFICATE_PATH")
    graph_certificate_thumbprint: str = Field("", validation_alias="GRAPH_CERTIFICATE_THUMBPRINT")
    # Only with a loopback GRAPH_BASE_URL: a fixed token instead of msal (tests).
    graph_static_token: SecretStr = Field(SecretStr(""), validation_alias="GRAPH_STATIC_TOKEN")
    sharepoint_site_id: str = Field("", validation_alias="SHAREPOINT_SITE_ID")
    sharepoint_drive_id: str = Field("", validation_alias="SHAREPOINT_DRIVE_ID")
    office_mailbox: str = Field("", validation_alias="OFFICE_MAILBOX")
    outlook_originator_id: str = Field("", validation_alias="OUTLOOK_ORIGINATOR_ID")
    # JSON maps for graph/directory.py: role → Entra group id, and area code → the director's user id.
    graph_role_groups: dict[str, str] = Field(default_factory=dict, validation_alias="GRAPH_ROLE_GROUPS")
    graph_area_directors: dict[str, str] = Field(default_factory=dict, validation_alias="GRAPH_AREA_DIRECTORS")

    @field_validator("now", mode="after")
    @classmethod
    def _now_in_lima(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=LIMA)
        return value

    @model_validator(mode="after")
    def _resolve_local_mode(self) -> "Settings":
        if self.local_mode is None:
            self.local_mode = not self.app_id
        return self

    @property
    def is_local(self) -> bool:
        return bool(self.local_mode)

    @property
    def logs_as_json(self) -> bool:
        return self.log_format == "json" if self.log_format else not self.is_local


def load_settings(**overrides) -> Settings:
    """Read the settings; a malformed one raises SettingsError naming it, in words an admin can act on."""
    from pydantic import ValidationError

    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        names = ", ".join(
            str(err["loc"][0]) + f" ({err['msg']})" for err in exc.errors()
        )
        raise SettingsError(f"Configuración inválida: {names}") from exc
    if not settings.app_id and not settings.is_local:
        raise SettingsError(
            "MicrosoftAppId está vacío y CLAQUETA_LOCAL_MODE=false: sin identificador de aplicación el bot "
            "solo puede arrancar en modo local."
        )
    if settings.now is not None and not settings.is_local:
        raise SettingsError("CLAQUETA_NOW solo se admite en modo local.")
    return settings
