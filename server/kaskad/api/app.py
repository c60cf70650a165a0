"""The Litestar application.

Routes are collected from every module in :mod:`kaskad.api`: a module's
``routes`` are mounted under ``/api/v1`` behind token auth, its
``public_routes`` at the root without it (signed links, provider webhooks,
the editor). Feature areas add a module; nobody edits a central list.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

from litestar import Litestar, Request, Response, Router, get
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

import kaskad
import kaskad.api
from kaskad.api.auth import TokenAuth
from kaskad.runtime import Runtime

log = logging.getLogger("kaskad.api")


def _route_modules():
    for info in sorted(pkgutil.iter_modules(kaskad.api.__path__), key=lambda m: m.name):
        if info.name in {"app", "auth"}:
            continue
        yield importlib.import_module(f"kaskad.api.{info.name}")


def _internal_error(request: Request, exc: Exception) -> Response:
    # A 500 is a bug: log it with the trace, tell the client nothing internal.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        {"status_code": 500, "detail": "internal error; the server log has the details"},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


@get("/health", sync_to_thread=False, include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "ok", "version": kaskad.__version__}


def create_app(runtime: Runtime) -> Litestar:
    api_handlers, public_handlers = [], [health]
    for module in _route_modules():
        api_handlers.extend(getattr(module, "routes", []))
        public_handlers.extend(getattr(module, "public_routes", []))
    for handler in public_handlers:
        if "roles" in (handler.opt or {}):  # role_opt is checked by TokenAuth, which public routes do not pass
            raise RuntimeError(f"public route {handler.paths} names roles: mount it under /api/v1 instead")
    api = Router(
        path="/api/v1",
        route_handlers=api_handlers,
        middleware=[DefineMiddleware(TokenAuth)],
        security=[{"bearer": []}],
    )

    async def on_shutdown(app: Litestar) -> None:
        for hook in list(runtime.extras.get("on_shutdown", [])):
            await hook() if callable(hook) else None

    app = Litestar(
        route_handlers=[api, *public_handlers],
        dependencies={"runtime": Provide(lambda: runtime, use_cache=True, sync_to_thread=False)},
        exception_handlers={HTTP_500_INTERNAL_SERVER_ERROR: _internal_error},
        openapi_config=OpenAPIConfig(
            title="Kaskad",
            version=kaskad.__version__,
            path="/schema",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", description="API token")}
            ),
        ),
        cors_config=CORSConfig(allow_origins=[], allow_credentials=False),
        request_max_body_size=runtime.settings.max_body_bytes,
        on_startup=list(runtime.extras.get("on_startup", [])),
        on_shutdown=[on_shutdown],
        debug=False,
    )
    app.state.runtime = runtime
    return app


__all__ = ["create_app", "HTTPException"]
