"""Flows: validate, save drafts, list, export, versions, publish, restore."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException

from kaskad.api.auth import ANY_ROLE, MARKETER, roles
from kaskad.flow import service
from kaskad.flow.validate import MAX_DOCUMENT_BYTES, FlowError, parse_document, validate
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction

EDITORS = roles("marketer", "integrator")


class PublishRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: int | None = None


class ValidationResult(msgspec.Struct, kw_only=True):
    valid: bool
    errors: list[FlowError]


def _errors(errors: list[FlowError]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(e) for e in errors]


def _document(body: bytes) -> dict:
    """The request body as a JSON object, or a 4xx saying why not."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise HTTPException(status_code=413, detail=f"the flow document is {len(body)} bytes; the limit is {MAX_DOCUMENT_BYTES}")
    if not body.strip():
        raise HTTPException(status_code=400, detail="send the flow JSON document as the request body")
    data, errors = parse_document(body)
    if data is None:
        raise HTTPException(status_code=400, detail=errors[0].message, extra={"errors": _errors(errors)})
    return data


def _author(request: Request) -> str:
    return f"{request.user} token {str(request.auth)[:8]}"


@post("/flows/validate", guards=[ANY_ROLE], status_code=200, sync_to_thread=False, tags=["flows"])
def validate_flow(runtime: Runtime, body: bytes) -> ValidationResult:
    """Validate a flow document against the core rules and the installed plugins; stores nothing."""
    _, errors = validate(_document(body), runtime.registry)
    return ValidationResult(valid=not errors, errors=errors)


@post("/flows", guards=[EDITORS], status_code=200, sync_to_thread=True, tags=["flows"])
def save_flow(runtime: Runtime, request: Request, body: bytes) -> service.SaveResult:
    """Create a flow or save its draft. An invalid draft is stored (``valid: false`` with the errors)."""
    data = _document(body)
    try:
        with transaction(runtime.sessions) as session:
            return service.save(session, runtime.registry, data, author=_author(request))
    except service.DocumentRejected as exc:
        raise HTTPException(status_code=400, detail=str(exc), extra={"errors": _errors(exc.errors)}) from exc


@get("/flows", guards=[ANY_ROLE], sync_to_thread=True, tags=["flows"])
def list_flows(runtime: Runtime) -> list[dict[str, Any]]:
    """Every flow with its current (published) and newest version."""
    with runtime.sessions() as session:
        return service.list_flows(session)


@get("/flows/{key:str}", guards=[ANY_ROLE], sync_to_thread=True, tags=["flows"])
def export_flow(runtime: Runtime, key: str, version: int | None = None) -> Response:
    """The flow JSON in canonical form; ``?version=N``, default the newest version (draft or not)."""
    with runtime.sessions() as session:
        try:
            data = service.export(session, key, version)
        except service.FlowNotFound as exc:
            raise NotFoundException(str(exc)) from exc
    return Response(content=data, media_type="application/json")


@get("/flows/{key:str}/versions", guards=[ANY_ROLE], sync_to_thread=True, tags=["flows"])
def flow_versions(runtime: Runtime, key: str) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        try:
            return service.list_versions(session, key)
        except service.FlowNotFound as exc:
            raise NotFoundException(str(exc)) from exc


@post("/flows/{key:str}/publish", guards=[MARKETER], status_code=200, sync_to_thread=True, tags=["flows"])
def publish_flow(runtime: Runtime, request: Request, key: str, body: bytes) -> dict[str, Any]:
    """Publish a version (body ``{"version": N}``, default the newest) and make it current."""
    version = None
    if body.strip():
        try:
            version = msgspec.json.decode(body, type=PublishRequest).version
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise HTTPException(status_code=400, detail=f'expected {{"version": N}} or an empty body: {exc}') from exc
    try:
        with transaction(runtime.sessions) as session:
            published = service.publish(session, runtime.registry, key, version, author=_author(request))
    except service.FlowNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except service.FlowInvalid as exc:
        raise HTTPException(status_code=422, detail=str(exc), extra={"errors": _errors(exc.errors)}) from exc
    return {"key": key, "version": published, "status": "published"}


@post("/flows/{key:str}/versions/{n:int}/restore", guards=[EDITORS], status_code=200, sync_to_thread=True, tags=["flows"])
def restore_version(runtime: Runtime, request: Request, key: str, n: int) -> dict[str, Any]:
    """Copy version ``n`` into a new draft."""
    try:
        with transaction(runtime.sessions) as session:
            version = service.restore(session, key, n, author=_author(request))
    except service.FlowNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    return {"key": key, "version": version, "status": "draft"}


routes = [validate_flow, save_flow, list_flows, export_flow, flow_versions, publish_flow, restore_version]
