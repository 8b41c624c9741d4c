"""Configuration: environment variables (prefix CDS_), an optional YAML/JSON file, and two profiles.

`dev` (the default of `cds serve`) binds to loopback and allows any CORS origin; `prod` locks CORS
to a configured list and requires https for fhirServer. Every value has an embedded default so
the service runs with no configuration at all.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cds.store.keyfile import load_or_create_key


class StartupError(RuntimeError):
    """Configuration that must stop the service from starting: prod without trusted clients, a knowledge
    file that does not match its model. The message names what to fix; `cds` prints it and exits 2."""


# Lists read from the environment as "a,b,c" (or a JSON array), not only as JSON.
CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore")

    profile: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: CsvList = Field(default_factory=lambda: ["*"])
    max_body_bytes: int = 32 * 1024 * 1024  # a 10,000-resource prefetch is about 8 MB
    max_prefetch_resources: int = 20_000

    # FHIR fallback: one budget per hook call, split into connect/read timeouts per request.
    fhir_deadline_s: float = 2.5
    fhir_connect_timeout_s: float = 1.0
    fhir_read_timeout_s: float = 2.0
    fhir_max_pages: int = 10
    fhir_page_size: int = 200
    # Isolation of the fallback (issue 12): bytes per response after decompression, bytes buffered by all
    # concurrent fetches of a worker, requests one call may run at once, reference reads per call.
    fhir_max_response_bytes: int = 8 * 1024 * 1024
    fhir_max_buffered_bytes: int = 32 * 1024 * 1024
    fhir_workers: int = 16
    # At least the most prefetch keys a service declares (9 for patient-view): with 8, the ninth query waited
    # for a slot and the fallback took two round trips (2.1x one query instead of 1.2x; make bench, fallback).
    fhir_per_call_parallel: int = 12
    fhir_max_reference_reads: int = 20
    # Report attachments (issue 14): fetched by url from the fhirServer and turned into text.
    attachment_max_bytes: int = 5 * 1024 * 1024  # per attachment, as stored (PDF, RTF, ...)
    attachment_max_count: int = 12  # attachments fetched per call, newest resources first
    attachment_max_text_chars: int = 100_000  # text kept per attachment
    attachment_max_pdf_pages: int = 20
    attachment_read_budget_s: float = 1.0  # reading time per call across all attachments (PDF, RTF)
    attachment_cache_ttl_s: float = 300.0  # fetched attachments kept per worker (keyed by URL + version)
    attachment_cache_entries: int = 128
    parse_cache_entries: int = 2000  # parsed FHIR models kept per worker (~10 KB each); 0 disables

    # Trust (issue 5): JWT verification of the CDS client, and where the FHIR fallback may connect.
    auth: Literal["required", "off"] | None = None  # default: off in dev, required in prod
    trusted_clients: Path | None = None  # JSON or YAML list of {iss, jwks_url | jwks, fhir_servers, ...}
    public_base_url: str | None = None  # externally visible base URL, for the JWT audience
    aud_aliases: CsvList = Field(default_factory=list)  # other base URLs the service is reached at
    jwt_algorithms: CsvList = Field(default_factory=lambda: ["ES384", "RS384"])
    jwt_leeway_s: int = 60
    jwks_ttl_s: int = 3600
    jwks_refetch_interval_s: float = 30.0
    redis_url: str | None = None  # shared jti replay cache across workers and replicas
    redis_key_prefix: str = "spine-cds:jti:"  # keys of the replay cache (one Redis may serve several sites)
    jwt_max_lifetime_s: int = 3600  # exp at most this far ahead (the replay cache keeps each jti until exp)
    # Hosts or IP addresses the FHIR fallback may reach even though they are loopback or link-local.
    fhir_allowed_hosts: CsvList = Field(default_factory=list)

    # Keyed hash of patient ids in logs and the card audit; when unset, see resolved_hash_key().
    hash_key: str | None = None
    log_level: str = "INFO"
    log_to_stderr: bool = False  # the offline CLI keeps stdout for the response
    knowledge_dir: Path | None = None
    # The site's time zone (IANA name): day windows are counted in local days, and a dateTime an EHR
    # sends without a zone is read in it.
    timezone: str = "UTC"
    # Fixed clock for replaying fixtures (tests, `cds evaluate --now`). Never set in production.
    clock: datetime | None = None

    # Feedback and card audit (issue 6): an SQLAlchemy URL; default an SQLite file (WAL) in data_dir.
    # data_dir also keeps the generated hash key (hash.key) when hash_key is unset.
    data_dir: Path = Path("data")
    database_url: str | None = None
    audit_queue_max: int = 10_000  # card audit rows waiting for the background writer
    audit_batch_max: int = 500  # rows per audit insert
    # PostgreSQL timeouts (cds.store.db): no request waits on a database that does not answer.
    db_connect_timeout_s: int = 3  # libpq rounds to whole seconds, 2 at least
    db_statement_timeout_s: float = 3.0  # one feedback post or audit batch, all statements together
    db_pool_timeout_s: float = 1.0  # waiting for a free pooled connection
    db_ready_timeout_s: float = 2.0  # /readyz's database check (readiness probe timeout: 3 s)
    db_retry_after_s: int = 5  # after a failure, feedback answers 503 with Retry-After at once this long
    db_report_timeout_s: float = 15.0  # the /analytics page's queries
    # Suppression lookup on the hook path (cds.suppression): the longest it may take before the cards are
    # shown anyway, and how long the database is then left alone.
    suppression_timeout_s: float = 0.25
    suppression_retry_s: float = 10.0

    @field_validator("cors_origins", "aud_aliases", "jwt_algorithms", "fhir_allowed_hosts", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.strip().startswith("["):
                return json.loads(v)
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as America/Chicago)") from exc
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Environment wins over the file; explicit overrides (CLI flags, tests) win over both."""
        path = config_file or os.environ.get("CDS_CONFIG_FILE")
        file_values: dict[str, Any] = {}
        if path:
            text = Path(path).read_text(encoding="utf-8")
            loaded = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
            if not isinstance(loaded, dict):
                raise ValueError(f"config file {path} must hold a mapping")
            file_values = {k.lower().removeprefix("cds_"): v for k, v in loaded.items()}
        env_values = cls().model_dump(exclude_unset=True)
        merged = {**file_values, **env_values, **overrides}
        settings = cls(**merged)
        if settings.profile == "prod" and "cors_origins" not in merged:
            settings.cors_origins = []
        return settings

    def resolved_database_url(self) -> str:
        """The configured database, or the SQLite file under data_dir (created on demand)."""
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'cds.sqlite3').resolve()}"

    def resolved_hash_key(self) -> str:
        """CDS_HASH_KEY, else a key generated once and kept in data_dir/hash.key (mode 0600).

        The audit trail joins cards of the same patient across restarts, so the key must be stable.
        """
        if self.hash_key:
            return self.hash_key
        return load_or_create_key(self.data_dir / "hash.key")

    @property
    def auth_required(self) -> bool:
        return (self.auth or ("required" if self.profile == "prod" else "off")) == "required"
