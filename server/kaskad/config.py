"""Settings, read once from the environment.

Every setting has an embedded default so that `kaskad serve` with nothing set
runs a complete server on one laptop: a SQLite file under ``KASKAD_HOME``, the
Dramatiq StubBroker with an in-process worker, and the editor at ``/editor``.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, kw_only=True, dict=True):  # dict: room for cached_property
    home: Path
    database_url: str | None = None
    broker_url: str | None = None
    admin_token: str | None = None
    load_plugins: list[str] | None = None
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 10_000
    max_body_bytes: int = 64 * 1024 * 1024
    #: Engine: runs per batch message, seconds before a claimed batch counts as lost,
    #: scheduler tick, and the first backoff of a failing plugin call (doubling each time).
    engine_batch: int = 500
    engine_lease: float = 300.0
    engine_tick: float = 0.5
    retry_base: float = 30.0
    #: Most nodes one message walks a run through before it continues in a new message
    #: (1 = the one-message-per-step baseline that bench/engine.py compares against).
    engine_steps: int = 1000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("KASKAD_HOME") or Path.home() / ".kaskad")
        plugins = env.get("KASKAD_LOAD_PLUGINS")
        return cls(
            home=home,
            database_url=env.get("KASKAD_DATABASE_URL") or None,
            broker_url=env.get("KASKAD_BROKER_URL") or None,
            admin_token=env.get("KASKAD_ADMIN_TOKEN") or None,
            load_plugins=[p.strip() for p in plugins.split(",") if p.strip()] if plugins is not None else None,
            secret_key=env.get("KASKAD_SECRET_KEY") or None,
            public_url=env.get("KASKAD_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            host=env.get("KASKAD_HOST", "127.0.0.1"),
            port=int(env.get("KASKAD_PORT", "8000")),
            engine_batch=int(env.get("KASKAD_ENGINE_BATCH", "500")),
            engine_lease=float(env.get("KASKAD_ENGINE_LEASE", "300")),
            engine_tick=float(env.get("KASKAD_ENGINE_TICK", "0.5")),
            retry_base=float(env.get("KASKAD_RETRY_BASE", "30")),
            engine_steps=int(env.get("KASKAD_ENGINE_STEPS", "1000")),
        )

    @property
    def embedded(self) -> bool:
        """True when running on the embedded default (SQLite, in-process worker)."""
        return self.database_url is None or self.database_url.startswith("sqlite")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'kaskad.db'}"

    @cached_property
    def signing_key(self) -> bytes:
        """Key for signed links (unsubscribe, tracking). Generated once and kept under KASKAD_HOME."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.home / "secret.key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()
