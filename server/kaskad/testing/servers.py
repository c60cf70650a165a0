"""Start real PostgreSQL and redis-server processes on free loopback ports.

Used by the test suite and by ``bench/``. Each server lives in a temporary
directory and is stopped (and the directory removed) by ``stop()``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("KASKAD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _as_user() -> list[str]:
    # initdb/postgres refuse to run as root; run them as the 'postgres' user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    return []


@dataclass
class PostgresServer:
    port: int = field(default_factory=free_port)
    user: str = "kaskad"
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kaskad-pg-")))
    proc: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self, durable: bool = False, settings: dict[str, str] | None = None) -> "PostgresServer":
        """Tests run without durability (fsync, synchronous_commit and full_page_writes off:
        a crash loses nothing a test needs). ``durable`` keeps PostgreSQL's own defaults,
        as production runs them: a commit returns once its WAL is flushed to disk. ``settings`` are
        extra ``-c name=value`` options (e.g. for profiling)."""
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL server binaries not found in {PG_BIN}; run 'make test' (it installs postgresql-15)")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(
            [*_as_user(), str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8",
             "--no-locale"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        opts = [
            "-p", str(self.port), "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1",
            "-c", "max_connections=300", "-c", "shared_buffers=256MB",
            "-c", "max_wal_size=4GB", "-c", "log_min_messages=warning",
        ]
        if not durable:
            opts += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        for name, value in (settings or {}).items():
            opts += ["-c", f"{name}={value}"]
        self.proc = subprocess.Popen(
            [*_as_user(), str(PG_BIN / "postgres"), "-D", str(self.data), *opts],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "server.log", "wb"),
            start_new_session=True,
        )
        wait_port(self.port)
        # The port opens a moment before the server accepts logins.
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres").close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return self

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM = smart shutdown; fine with fsync off
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class RedisServer:
    port: int = field(default_factory=free_port)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kaskad-redis-")))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("redis-server not found; run 'make test' (it installs redis-server)")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_port(self.port)
        return self

    def restart(self) -> None:
        """Stop and start again on the same port (its data is gone: no persistence)."""
        self.stop(remove=False)
        self.start()

    def stop(self, remove: bool = True) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
