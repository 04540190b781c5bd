"""Every knob of LeadScore in one pydantic-settings class, read from `LEADSCORE_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadscore_pipeline.scoring.params import ScoringParams, TierThresholds


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="ignore")

    home: Path = Path(".leadscore")
    # Unset: `leadscore up` starts an embedded PostgreSQL under `home` and exports its URL here.
    database_url: str | None = None
    # Per process: at most size + overflow pooled connections; a request waits this long for one, then gets a 503.
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(5, ge=0)
    db_pool_timeout_seconds: float = Field(5.0, gt=0)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dagster_port: int = 3000
    load_sample: bool = True

    admin_token: str | None = None
    ingest_key: str | None = None
    # Unset: reads are open. Set: every /api read needs it (or the admin token) as a bearer token.
    read_key: str | None = None
    # Host names the API answers to besides the local names and LEADSCORE_API_HOST (comma-separated; `*.example.com`
    # patterns; `*` for any): the rest are refused, against DNS rebinding.
    allowed_hosts: str | None = None
    # slowapi limits per client key (or address), e.g. "100/minute" or "10/second;500/hour"; unset: no limit.
    rate_limit_ingest: str | None = None
    rate_limit_read: str | None = None
    # Standard Webhooks secrets (`whsec_<base64>`), comma-separated: several at once lets a sender rotate.
    webhook_secrets: str | None = None
    webhook_tolerance_seconds: int = 300
    # CSV files dropped here are landed by a Dagster sensor; default: $LEADSCORE_HOME/dropzone.
    drop_dir: Path | None = None
    dagster_url: str | None = None  # the Dagster webserver the API launches replays through
    # Leads are split into this many buckets by a hash of their key: the unit of every rebuild (a bucket's history
    # is what a replay holds in memory at once). Changing it for a database with history: `leadscore rebucket`.
    lead_buckets: int = Field(16, ge=1, le=256)
    # A backlog of more landed deliveries than this is not one micro-batch (whose memory would follow it) but a
    # catch-up: rebuilt a bucket group per run, as a replay is, through the landing seq it started at.
    bulk_threshold: int = Field(200_000, ge=1)
    # A replay, rules rescore or catch-up is one Dagster run per this many lead buckets; unset, the buckets split
    # evenly over `parallel_runs`, so the runs start together (each starts a process: fewer runs start sooner).
    replay_buckets_per_run: int | None = Field(None, ge=1, le=256)
    # Runs of bucket groups (a replay, a catch-up, a rules rescore) Dagster's queue lets run at once.
    parallel_runs: int = Field(2, ge=1)
    # A rebuild step holds about this many landed deliveries' worth of buckets in memory at once (at least one
    # bucket): a run streams through its buckets in chunks, so its memory follows this, not its bucket count.
    rebuild_chunk_rows: int = Field(500_000, ge=1)
    # Where the steps of a backfill's runs (replays, rescores) execute: in the run's own process, or as Celery tasks
    # on workers (docs/scale-out.md). Micro-batches stay in-process either way: a task hop costs them latency.
    executor: Literal["in_process", "celery"] = "in_process"
    celery_broker: str = "redis://127.0.0.1:6379/0"  # also the result backend: one service to run
    # Celery workers `leadscore up` starts on this machine; 0 when they run on other machines.
    celery_workers: int = Field(2, ge=0)

    # Identity stitching (SPEC section 3): an external id joins an email's lead only while it has been seen with at
    # most this many distinct emails (merge protection); past it the id is ambiguous and joins nothing.
    max_emails_per_id: int = Field(1, ge=1, le=1000)

    # Scoring (SPEC section 4).
    score_floor: int = 0
    score_cap: int = 1000
    inactivity_days: int = Field(30, ge=0)
    decay_points: int = Field(5, ge=0)
    tier_warm: int = 50
    tier_hot: int = 150
    tier_qualified: int = 300

    # Ingestion limits (SPEC section 2).
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2000
    # A CSV upload (multipart), counted while it streams in: the request stops with a 413 once past it.
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1)
    max_future_seconds: int = 3600

    @field_validator("rate_limit_ingest", "rate_limit_read")
    @classmethod
    def _rate_limit_syntax(cls, value: str | None) -> str | None:
        if value:
            parse_many(value)  # a typo fails at start-up, not as a 500 on the first request
        return value or None

    @model_validator(mode="after")
    def _check_bounds(self) -> Settings:
        if self.score_floor > self.score_cap:
            raise ValueError("LEADSCORE_SCORE_FLOOR must not exceed LEADSCORE_SCORE_CAP")
        if not self.tier_warm <= self.tier_hot <= self.tier_qualified:
            raise ValueError("tier thresholds must be ordered: warm <= hot <= qualified")
        return self

    @property
    def buckets_per_run(self) -> int:
        """Lead buckets per run of a replay, rules rescore or catch-up."""
        return self.replay_buckets_per_run or -(-self.lead_buckets // self.parallel_runs)

    @property
    def scoring(self) -> ScoringParams:
        return ScoringParams(
            floor=self.score_floor,
            cap=self.score_cap,
            inactivity_days=self.inactivity_days,
            decay_points=self.decay_points,
        )

    @property
    def tiers(self) -> TierThresholds:
        return TierThresholds(warm=self.tier_warm, hot=self.tier_hot, qualified=self.tier_qualified)

    @property
    def webhook_secret_list(self) -> list[str]:
        return [secret.strip() for secret in (self.webhook_secrets or "").split(",") if secret.strip()]

    @property
    def api_base_url(self) -> str:
        """Where the API `leadscore up` starts is reached from this machine (the CLI, the banner)."""
        return f"http://{self.local_host}:{self.api_port}"

    @property
    def allowed_host_list(self) -> list[str]:
        # Rebinding needs a domain name of the attacker's: the local names and the bound address are always safe.
        listed = [host.strip().lower() for host in (self.allowed_hosts or "").split(",") if host.strip()]
        return list(dict.fromkeys(["127.0.0.1", "localhost", "::1", self.api_host.lower(), *listed]))

    @property
    def dagster_base_url(self) -> str:
        return (self.dagster_url or f"http://{self.local_host}:{self.dagster_port}").rstrip("/")

    @property
    def local_host(self) -> str:
        """LEADSCORE_API_HOST as a URL host: a wildcard bind is reached on loopback; an IPv6 address in brackets."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.api_host, self.api_host)
        return f"[{host}]" if ":" in host else host

    @property
    def admin_token_path(self) -> Path:
        return self.home.resolve() / "admin_token"

    def configured_admin_token(self) -> str | None:
        """LEADSCORE_ADMIN_TOKEN, else the token `leadscore up` generated under $LEADSCORE_HOME."""
        if self.admin_token:
            return self.admin_token
        path = self.admin_token_path
        return path.read_text().strip() if path.exists() else None

    @property
    def dropzone(self) -> Path:
        return (self.drop_dir or self.home / "dropzone").resolve()

    @property
    def dagster_home(self) -> Path:
        return self.home.resolve() / "dagster"


@lru_cache
def get_settings() -> Settings:
    return Settings()
