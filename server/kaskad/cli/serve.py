"""``kaskad serve``: the API (and, on the embedded default, the worker and scheduler too)."""

from __future__ import annotations

import logging
import os
import sys

from kaskad.config import Settings

log = logging.getLogger("kaskad")


def bootstrap_admin_token(runtime) -> str | None:
    """Apply ``KASKAD_ADMIN_TOKEN``; on the embedded default without it, make one once.

    Returns a newly generated token (to print once), else None.
    """
    from sqlalchemy import select

    from kaskad import tokens
    from kaskad.store.engine import transaction
    from kaskad.store.models import ApiToken

    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        if settings.admin_token:
            tokens.ensure_token(session, settings.admin_token, "admin", "bootstrap admin (KASKAD_ADMIN_TOKEN)")
            return None
        if session.scalar(select(ApiToken.id).where(ApiToken.role == "admin").limit(1)) is not None:
            return None
        if not settings.embedded:
            log.warning("no admin token exists; set KASKAD_ADMIN_TOKEN or run 'kaskad token create --role admin'")
            return None
        token = tokens.create_token(session, "admin", "generated admin")
    path = settings.home / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def worker_app():
    """The app one of several ``--workers`` processes serves (uvicorn imports and calls this).
    The parent process has applied migrations and the admin token already."""
    from kaskad.api.app import create_app
    from kaskad.runtime import Runtime

    return create_app(Runtime.create(Settings.from_env(), migrate=False))


def serve(args) -> int:
    import uvicorn

    from kaskad.api.app import create_app
    from kaskad.runtime import Runtime

    settings = Settings.from_env()
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    workers = args.workers or int(os.environ.get("KASKAD_WORKERS") or 1)
    if workers > 1 and (settings.embedded or args.with_worker or args.demo):
        print("kaskad serve: --workers needs KASKAD_DATABASE_URL (PostgreSQL) and no --with-worker or --demo: "
              "the embedded default runs the API, worker and scheduler in one process", file=sys.stderr)
        return 2
    runtime = Runtime.create(settings)
    token = bootstrap_admin_token(runtime)
    if token:
        print(
            f"\n  Admin API token (shown once, kept in {settings.home / 'admin-token'}):\n\n    {token}\n",
            file=sys.stderr,
            flush=True,
        )
    if args.demo:
        from kaskad.demo import load_demo

        load_demo(runtime)
    if settings.embedded or args.with_worker:
        try:
            from kaskad.engine.embedded import attach
        except ImportError:
            log.info("the journey engine is not installed in this build; serving the API only")
        else:
            attach(runtime)
    print(f"Kaskad on http://{settings.host}:{settings.port}  (editor: /editor, API: /api/v1, OpenAPI: /schema)"
          + (f", {workers} worker processes" if workers > 1 else ""), file=sys.stderr, flush=True)
    if workers > 1:
        runtime.close()
        # Each process builds its own runtime: connection pools do not survive a fork.
        uvicorn.run("kaskad.cli.serve:worker_app", factory=True, workers=workers, host=settings.host,
                    port=settings.port, log_level="info", access_log=False)
        return 0
    uvicorn.run(create_app(runtime), host=settings.host, port=settings.port, log_level="info", access_log=False)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="run the API server (embedded default: with worker and scheduler)")
    p.add_argument("--host", help="bind address (default KASKAD_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default KASKAD_PORT or 8000)")
    p.add_argument("--demo", action="store_true", help="load demo contacts, orders and flows")
    p.add_argument("--with-worker", action="store_true", help="run the worker in-process even with a database URL")
    p.add_argument("--workers", type=int, help="API processes sharing the port (default KASKAD_WORKERS or 1; "
                   "PostgreSQL only): about one per core")
    p.set_defaults(func=serve)
