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
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore")

    profile: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = 8080
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    max_body_bytes: int = 5 * 1024 * 1024
    max_prefetch_resources: int = 20_000

    # FHIR fallback: one budget per hook call, split into connect/read timeouts per request.
    fhir_deadline_s: float = 2.5
    fhir_connect_timeout_s: float = 1.0
    fhir_read_timeout_s: float = 2.0
    fhir_max_pages: int = 10
    fhir_page_size: int = 200
    fhir_max_response_bytes: int = 20 * 1024 * 1024
    fhir_workers: int = 16

    # Keyed hash of patient ids in logs. A random per-process key is used when unset.
    hash_key: str | None = None
    log_level: str = "INFO"
    knowledge_dir: Path | None = None
    # Fixed clock for replaying fixtures (tests, `cds evaluate --now`). Never set in production.
    clock: datetime | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip().startswith("["):
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

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
