"""Every environment variable the product reads: name, default and meaning, in one place.

Defaults are the product's documented figures (8 cached messages, 2 h TTL, a rolling summary
every 5 messages, a fallback of 20 messages with a 30 min expiry).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# What a REDIS_URL's query may hold: redis-py hands every other option to the connection
# (a TypeError on every request), and the product sets the timeouts, pool and retries itself
# (the REDIS_* settings). TLS options only with rediss://, where they mean something.
_REDIS_URL_OPTIONS = frozenset({"db", "protocol", "client_name"})
_REDIS_TLS_OPTIONS = frozenset(
    {
        "ssl_cert_reqs",
        "ssl_check_hostname",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_min_version",
    }
)


def _check_redis_url(url: str | None) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("REDIS_URL must be a redis://, rediss:// (TLS) or unix:// URL")
    allowed = _REDIS_URL_OPTIONS | (_REDIS_TLS_OPTIONS if parts.scheme == "rediss" else frozenset())
    for name in parse_qs(parts.query, keep_blank_values=True):
        if name in _REDIS_TLS_OPTIONS or name == "ssl":
            if parts.scheme != "rediss":
                raise ValueError(f"REDIS_URL option {name!r} needs a rediss:// URL (TLS)")
        elif name not in allowed:
            raise ValueError(
                f"REDIS_URL option {name!r} is not one this product can honour "
                f"(it may hold {', '.join(sorted(allowed))}; timeouts and the pool are REDIS_* settings)"
            )
    return url


class Settings(BaseSettings):
    # hide_input_in_errors: a refused REDIS_URL (it may hold a password) is never echoed in a log
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", hide_input_in_errors=True)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return _check_redis_url(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for item in (s.strip() for s in value.split(",")):
            if item and item != "fastly":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"TRUSTED_PROXIES: {item!r} is not a CIDR (nor 'fastly')") from None
        return value

    # --- Redis (Memorystore) -------------------------------------------------------
    redis_url: str | None = Field(None, description="redis:// or rediss:// URL; unset: no Redis layer")
    redis_tls_ca_path: str | None = Field(
        None,
        description="PEM file of the CA that signs Redis' certificate (rediss://, e.g. Memorystore's "
        "in-transit encryption CA); unset: the system's CAs",
    )
    redis_cluster: bool = Field(False, description="Use the Redis Cluster client (Memorystore for Redis Cluster)")
    redis_connect_timeout_s: float = Field(0.5, gt=0, le=10, description="Seconds to open a Redis connection")
    redis_socket_timeout_s: float = Field(0.5, gt=0, le=10, description="Seconds to wait for a Redis reply")
    redis_max_connections: int = Field(32, ge=1, le=1000, description="Connection pool size per instance")
    redis_breaker_cooldown_s: float = Field(
        5.0, ge=0, le=300, description="After a Redis failure, skip Redis for this long (per instance)"
    )
    redis_restart_horizon_s: float = Field(
        120.0,
        ge=0,
        le=3600,
        description=(
            "A Redis run this young, met by an instance for the first time, counts as just restarted: "
            "the instance merges outage messages before serving"
        ),
    )
    redis_key_prefix: str = Field("cm", pattern=r"^[a-z][a-z0-9_]{0,15}$", description="Prefix of every Redis key")

    # --- Windows and lifetimes -----------------------------------------------------
    message_window: int = Field(8, ge=1, le=100, description="Messages in a session's recent window (the context)")
    window_max_bytes: int = Field(
        1024 * 1024,
        ge=256 * 1024,
        description="Bytes of the window's messages at most; past it the oldest leave the window early",
    )
    session_ttl_s: int = Field(7200, ge=60, description="Sliding TTL of a session's Redis keys")
    summary_interval: int = Field(5, ge=1, le=100, description="A rolling summary every N messages")
    analytics_buffer_max: int = Field(
        1000, ge=10, le=100000, description="Answers per session in Redis before its appends are refused"
    )
    analytics_buffer_max_bytes: int = Field(
        2 * 1024 * 1024,
        ge=512 * 1024,
        description="Bytes of one session's messages (and their ids) in Redis before its appends are refused",
    )
    pending_max_bytes: int = Field(
        1024 * 1024,
        ge=512 * 1024,
        description="Bytes of not-yet-summarized messages handed to the summarizer; the oldest are left out past it",
    )
    max_active_sessions_per_user: int = Field(
        10,
        ge=0,
        le=10000,
        description="Sessions one user may have active at once (409 too_many_sessions past it; 0: no cap)",
    )
    fallback_max_messages: int = Field(20, ge=1, le=1000, description="Messages per session in instance memory")
    fallback_ttl_s: int = Field(1800, ge=60, description="Instance-memory sessions expire after this much silence")
    fallback_max_sessions: int = Field(10000, ge=1, description="Per-instance memory bound")
    fallback_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes the instance-memory fallback may hold in all; past it, 503 instead of evicting messages",
    )
    session_idle_timeout_s: int = Field(1800, ge=60, description="The sweep ends sessions idle this long")
    stats_repair_window_s: int = Field(
        3600, ge=0, description="The sweep re-applies user stats for sessions ended this recently; 0: off"
    )
    sweep_batch_size: int = Field(200, ge=1, le=1000, description="Sessions read per page by the sweep")
    sweep_concurrency: int = Field(8, ge=1, le=64, description="Sessions the sweep ends at once")
    end_lease_s: int = Field(
        30, ge=5, le=600, description="An end attempt owns the session's end this long; then another may take over"
    )
    sweep_max_sessions: int = Field(
        20000, ge=1, description="Sessions examined per sweep run (each of its two scans), at most"
    )
    sweep_budget_s: float = Field(
        240.0,
        ge=1,
        le=3600,
        description=(
            "Seconds a sweep run starts new pages of idle sessions for (under the schedule's 300 s "
            "timeout, which must also hold the stats repair); the next run goes on, oldest first"
        ),
    )

    # --- Limits ---------------------------------------------------------------------
    max_content_bytes: int = Field(32 * 1024, ge=1, description="Largest message content (UTF-8 bytes)")
    max_metadata_bytes: int = Field(8 * 1024, ge=2, description="Largest message metadata (bytes of JSON)")
    max_item_bytes: int = Field(
        32 * 1024, ge=2, description="Largest framework item on a message (an ADK event, an Agents item; bytes of JSON)"
    )
    max_user_info_bytes: int = Field(4 * 1024, ge=2, description="Largest user_info at session creation")
    state_max_bytes: int = Field(
        16 * 1024, ge=2, le=512 * 1024, description="Largest app or user state (update_state; bytes of JSON)"
    )
    state_max_apps: int = Field(10, ge=1, le=100, description="Apps that keep a state per user at most")
    max_request_bytes: int = Field(64 * 1024, ge=1024, description="Largest HTTP request body (413 above)")
    history_max_limit: int = Field(
        100, ge=1, le=1000, description="Largest `limit` of get_history (Redis holds the last MESSAGE_WINDOW)"
    )
    export_page_max_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024 * 1024,
        le=30 * 1024 * 1024,
        description="Largest export_my_data page (bytes of JSON); a bigger session is split across pages",
    )
    export_max_concurrent: int = Field(
        4,
        ge=1,
        le=80,
        description="export_my_data requests one instance builds at once (a page takes a few times its size)",
    )
    export_slot_wait_s: float = Field(
        10.0, ge=0, le=60, description="How long an export waits for a free slot before a 503 with Retry-After"
    )
    counter_shards: int = Field(
        20,
        ge=1,
        le=500,
        description=(
            "Documents each day's rollup and each KB entry's usage are spread over (a session's "
            "end writes the one its id picks): each takes about 1/N of the ends; size N to the "
            "peak ends per second (Firestore sustains about one write per second per document)"
        ),
    )
    low_confidence_threshold: float = Field(
        0.5, ge=0, le=1, description="Answers below this confidence count as low confidence in the admin reports"
    )
    chat_token_budget: int = Field(
        4000, ge=100, le=1_000_000, description="Token budget of the context a chat turn gives the responder"
    )

    # --- Memory across sessions (users/{uid}/memories) ------------------------------
    memory_recall_k: int = Field(
        3, ge=0, le=10, description="Past sessions recalled into a conversation's context at most (0: no recall)"
    )
    memory_retention_days: int = Field(
        365, ge=1, le=3650, description="Days a session's memory is kept (expire_at: a Firestore TTL policy deletes it)"
    )
    memory_max_sessions: int = Field(
        200, ge=1, le=1000, description="Memories kept per user; past it the oldest are deleted as new ones arrive"
    )
    memory_text_max_chars: int = Field(
        600, ge=100, le=4000, description="Longest memory text the model reads (per past session)"
    )
    memory_search_max_bytes: int = Field(
        4096, ge=1024, le=65536, description="Bytes of a memory's search text (drawn from the whole session) at most"
    )
    memory_query_max_chars: int = Field(
        1000, ge=10, le=10000, description="Longest search_memories query (q); longer is a 400"
    )
    embeddings: Literal["none", "local", "vertex"] = Field(
        "none",
        description="Memory ranking: none (BM25, offline), local (BM25 fused with a deterministic offline "
        "hashing embedder, find_nearest) or vertex (BM25 fused with gemini-embedding-001 at 768 dimensions)",
    )

    # --- Summarizer -----------------------------------------------------------------
    summarizer: Literal["extractive", "gemini"] = Field("extractive", description="Rolling-summary engine")
    summary_max_chars: int = Field(1200, ge=100, le=20000, description="Longest rolling summary")
    gemini_model: str = Field("gemini-2.5-flash", description="Gemini model (SUMMARIZER=gemini, RESPONDER=gemini)")
    gemini_timeout_s: float = Field(
        8.0, gt=0, le=60, description="Gemini call timeout; then the fallback (extractive summary, kb answer)"
    )

    # --- Responder (the assistant's answer in a chat turn) --------------------------
    responder: Literal["kb", "gemini"] = Field(
        "kb",
        description="Answer engine: kb (BM25 over the FAQ, offline) or gemini (grounded on the FAQ; kb on failure)",
    )
    kb_path: str | None = Field(
        None,
        description="FAQ file (JSON) answers come from; unset: the sample in shared/features/responders/data/faq.json",
    )
    kb_min_confidence: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Below this retrieval confidence the answer is 'I don't know' and how to reach a person",
    )

    # --- Firestore / Firebase -------------------------------------------------------
    gcp_project: str | None = Field(
        None,
        validation_alias=AliasChoices("GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT"),
        description="Project id (set by Cloud Functions and the emulators)",
    )
    firestore_enabled: bool = Field(True, description="false: no Firestore layer (tests, local experiments)")
    firestore_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Total deadline of one Firestore RPC, retries included"
    )
    firestore_breaker_cooldown_s: float = Field(
        5.0, ge=0, le=300, description="After a Firestore outage, skip Firestore for this long (per instance)"
    )

    # --- HTTP edge ------------------------------------------------------------------
    auth_disabled: bool = Field(
        False, description="LOCAL DEVELOPMENT ONLY: trust X-User-Id / a dev uid (refused when deployed)"
    )
    token_check_cache_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Seconds an ID token's 'not revoked, not disabled' answer is reused (per instance); "
        "a revocation or a disabled account takes effect within this time; 0: ask Firebase Auth every time",
    )
    token_clock_skew_s: int = Field(
        5, ge=0, le=60, description="Seconds of clock skew tolerated on an ID token's iat/exp"
    )
    backend_service_accounts: str = Field(
        "",
        description="Comma-separated service-account emails whose Google ID tokens are a backend identity "
        "(they act for a named user_id); empty: none is accepted",
    )
    backend_token_audiences: str = Field(
        "",
        description="Comma-separated audiences a service account's ID token must carry (e.g. the functions' "
        "base URL); required when BACKEND_SERVICE_ACCOUNTS is set",
    )
    health_cache_s: float = Field(
        5.0, ge=0, le=300, description="health probes the stores at most once per this many seconds (per instance)"
    )
    cors_origins: str = Field("", description="Comma-separated allowed origins; '*' for any")
    rate_limit_per_minute: int = Field(120, ge=0, description="Requests per user per minute; 0 disables")
    session_create_per_ip_per_minute: int = Field(
        30, ge=0, description="Sessions created per client IP (IPv6: per /64) per minute, whatever the uid; 0 disables"
    )
    client_ip_hops: int = Field(
        1,
        ge=1,
        le=10,
        description="The client IP is this many X-Forwarded-For entries from the right (1: Cloud Functions direct)",
    )
    trusted_proxies: str = Field(
        "fastly",
        description=(
            "Comma-separated CIDRs of proxies in front (their X-Forwarded-For entries are skipped leftward); "
            "'fastly': Fastly's published ranges, Firebase Hosting's CDN; '': none"
        ),
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")

    # --- Platform (set by Cloud Run / the emulators; read to tell a deployment apart) ---
    k_service: str | None = Field(
        None, description="Set by Cloud Run for a deployed function (and by the Functions emulator)"
    )
    k_configuration: str | None = Field(
        None, description="Set by Cloud Run; never by the Functions emulator, and not settable from .env files"
    )
    functions_emulator: str | None = Field(None, description="'true' under the Functions emulator")
    firebase_auth_emulator_host: str | None = Field(
        None, description="Auth emulator host:port; firebase-admin then accepts unsigned tokens (refused when deployed)"
    )
    firestore_emulator_host: str | None = Field(
        None, description="Firestore emulator host:port (refused when deployed)"
    )

    @property
    def deployed(self) -> bool:
        """Serving in the cloud rather than under the emulator, the tests, the bench or a shell.

        K_CONFIGURATION is set only by Cloud Run; a bare K_SERVICE is the emulator's too, which
        says so with FUNCTIONS_EMULATOR=true.
        """
        if self.k_configuration:
            return True
        return bool(self.k_service) and self.functions_emulator != "true"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def backend_service_account_set(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.backend_service_accounts.split(",") if e.strip())

    @property
    def backend_token_audience_list(self) -> list[str]:
        return [a.strip() for a in self.backend_token_audiences.split(",") if a.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once per instance (env does not change at run time)."""
    return Settings()


def reset_settings() -> None:
    """For tests: re-read the environment on the next get_settings()."""
    get_settings.cache_clear()
