"""Settings, read in one place: environment variables (``TENANTRY_*``) over ``tenantry.toml`` over defaults.

The embedded default needs nothing: a SQLite file and a data folder under ``./tenantry-data``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Everything the application reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="TENANTRY_", toml_file="tenantry.toml", extra="ignore")

    data_dir: Path = Field(default=Path("tenantry-data"), description="Folder for the SQLite file and blobs.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means SQLite in data_dir. PostgreSQL: postgresql+psycopg://…",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None, description="Base URL clients see (for meta.location); defaults to the request's own."
    )
    default_tenant: str = "default"
    default_phone_region: str | None = Field(
        default=None,
        description="ISO region used to read phone numbers written without a country code (e.g. 'DE').",
    )
    scim_max_results: int = 1000
    scim_default_count: int = 100
    scim_patch_members_limit: int = Field(
        default=1000, description="A group PATCH answers 204 (no body) above this many members, else 200 + body."
    )
    bulk_max_operations: int = 1000
    bulk_max_payload_bytes: int = 1_048_576
    secret_key: str | None = Field(
        default=None, description="Fernet key for stored credentials; default: <data_dir>/secret.key."
    )
    search_backend: str = Field(
        default="tantivy",
        description="tantivy (embedded, one machine) or postgres (PostgreSQL full-text; several machines).",
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker (redis://… or amqp://…); unset runs jobs in-process."
    )
    broker_queue: str = Field(default="tenantry", description="The Celery queue Tenantry's jobs go to.")
    scheduler_interval: int = Field(default=60, description="Seconds between the scheduler's checks for due work: "
                                    "connector runs, provisioning cycles, periodic sweeps.")
    provisioning_log_days: int = Field(default=30, ge=1, description="Days provisioning logs are kept.")
    scim_log_days: int = Field(default=30, ge=1, le=36_500,
                               description="Days the SCIM request log (inbound SCIM writes) is kept.")
    scim_log_reads: bool = Field(default=False, description="Record SCIM reads (GET, .search) in the request log too.")
    smtp_host: str | None = Field(default=None, description="SMTP server for notifications (provisioning).")
    smtp_port: int = 25
    smtp_from: str = Field(default="tenantry@localhost", description="From address of notifications.")
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # What leaves the machine (core/egress.py, docs/security.md): where targets a tenant admin names may point.
    outbound_allow_loopback: bool = Field(
        default=False, description="Let targets (SCIM apps, feeds, IMAP) be on 127.0.0.0/8 or ::1 (tests, one box)."
    )
    outbound_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs, comma-separated: when set, targets may only be in these networks (loopback aside).",
    )
    outbound_denied_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="CIDRs, comma-separated, targets may never be in (e.g. 10.0.0.0/8)."
    )
    # Uploads and zips (issue #9): a WhatsApp export with media is one zip of the phone's photos, videos and
    # voice notes (already compressed, so the zip is about their size); 2 GiB holds years of a busy chat and
    # is the most WhatsApp lets one export carry in practice. Bodies stream to the data folder, never memory.
    upload_max_bytes: int = Field(default=2 * 1024**3, ge=1, description="Largest export upload (bytes); 413 over.")
    admin_body_max_bytes: int = Field(
        default=16 * 1024**2, ge=1, description="Largest other admin API body read whole (the mapping CSV); 413 over."
    )
    zip_max_members: int = Field(default=20_000, ge=1, description="Most files one export zip may hold.")
    zip_max_total_bytes: int = Field(
        default=4 * 1024**3, ge=1, description="Most bytes an export zip's files may add up to, uncompressed."
    )
    zip_max_ratio: int = Field(
        default=100, ge=1, description="Highest compression ratio of one zip member over 1 MiB (zip bombs: ~1000)."
    )
    # Console sign-in (auth/, docs/sign-in.md): local administrator passwords and their lockout, browser sessions.
    signin_max_failures: int = Field(
        default=5, ge=1, le=100, description="Consecutive wrong passwords that lock a console account.")
    signin_lockout_minutes: int = Field(
        default=15, ge=1, le=7 * 24 * 60, description="How long a locked console account stays locked.")
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A console session unused this long is signed out.")
    session_absolute_hours: int = Field(
        default=12, ge=1, le=30 * 24, description="A console session ends this long after sign-in, used or not.")
    cookie_secure: bool = Field(
        default=True, description="Mark the console's cookies Secure (HTTPS only); false for plain http on one box.")
    # Hybrid voice (voice/, docs/voice.md): the SIP redirect service and the DNS checks.
    voice_sip_enabled: bool = Field(
        default=False, description="Run the SIP redirect service beside the web server (tenantry serve).")
    voice_sip_host: str = Field(default="127.0.0.1", description="Address the SIP redirect service listens on.")
    voice_sip_port: int = Field(default=5060, ge=0, le=65535, description="Its port (UDP and TCP).")
    voice_sip_tenant: str | None = Field(
        default=None, description="The tenant whose calls the SIP service routes (default: the default tenant).")
    voice_snapshot_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="How often the SIP service re-reads the voice configuration.")
    voice_dns_server: str | None = Field(
        default=None, description="host[:port] the voice DNS checks ask (default: the system's resolver).")
    bootstrap_scim_token: str | None = Field(
        default=None, description="Create this SCIM token for the default tenant on start (tests, automation)."
    )
    bootstrap_admin_token: str | None = Field(
        default=None, description="Create this admin API token on start (tests, automation)."
    )
    bootstrap_operator_token: str | None = Field(
        default=None, description="Create this operator token (lists and creates tenants) on start."
    )

    @field_validator("outbound_allowed_networks", "outbound_denied_networks", mode="before")
    @classmethod
    def _network_list(cls, value: Any) -> Any:
        if isinstance(value, str):   # the environment's form: "10.0.0.0/8, 192.168.0.0/16"
            value = [v for v in re.split(r"[,\s]+", value) if v]
        return value

    @field_validator("outbound_allowed_networks", "outbound_denied_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not an IP network (CIDR such as 10.0.0.0/8 or fd00::/8)") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tenantry.db').resolve()}"
