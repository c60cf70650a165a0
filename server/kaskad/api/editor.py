"""The web editor: its built files at ``/editor``, and the two small calls it needs.

``/editor`` and every path below it answer the single-page app's ``index.html``
(deep links such as ``/editor/flows/welcome`` work after a reload); real files
under ``dist/`` (``/editor/assets/…``) are served as they are. Without a build
the editor answers a page saying how to make one, not an error.

Under ``/api/v1``: ``GET /editor/session`` tells the editor which role its
token has (to hide what the role cannot do), and ``POST /editor/preview``
renders a message's templates against one contact through the sandboxed
template engine, so the browser never evaluates a template itself.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import Response
from sqlalchemy import select

from kaskad import templates
from kaskad.api.auth import ANY_ROLE
from kaskad.runtime import Runtime
from kaskad.store.models import Contact

#: Where ``npm run build`` puts the editor; ``KASKAD_EDITOR_DIST`` overrides it.
DEFAULT_DIST = Path(__file__).resolve().parents[3] / "web-editor" / "dist"

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Kaskad editor</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>The editor is not built</h1>
<p>This server found no editor build in <code>{dist}</code>.</p>
<p>Run <code>make run</code> (it builds the editor and starts the server), or build it by hand:
<code>cd web-editor &amp;&amp; npm install &amp;&amp; npm run build</code>, then reload this page.</p>
</body>"""


def editor_dist() -> Path:
    return Path(os.environ.get("KASKAD_EDITOR_DIST") or DEFAULT_DIST)


def _file_response(path: Path) -> Response:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Built assets carry a content hash in their name, so they can be cached for good;
    # index.html must be revalidated so a new build is picked up.
    immutable = path.parent.name == "assets"
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    return Response(path.read_bytes(), media_type=media_type, headers={"Cache-Control": cache})


def _serve(rest: str) -> Response:
    dist = editor_dist().resolve()
    index = dist / "index.html"
    if not index.is_file():
        return Response(NOT_BUILT.format(dist=dist), media_type="text/html", status_code=503)
    if rest:
        candidate = (dist / rest).resolve()
        if candidate.is_file() and candidate.is_relative_to(dist):
            return _file_response(candidate)
        if rest.startswith("assets/"):
            # A missing asset is a real 404 (a stale page after a rebuild), not the app.
            raise NotFoundException(f"no editor asset {rest!r}")
    return _file_response(index)


@get(["/editor", "/editor/"], sync_to_thread=False, include_in_schema=False)
def editor_index() -> Response:
    return _serve("")


@get("/editor/{rest:path}", sync_to_thread=False, include_in_schema=False)
def editor_path(rest: str) -> Response:
    return _serve(rest.lstrip("/"))


@get("/editor/session", guards=[ANY_ROLE], sync_to_thread=False, tags=["editor"])
def editor_session(request: Request) -> dict[str, Any]:
    """The role of the calling token, and what it may do in the editor."""
    role = request.user
    return {"role": role, "can_save": role in {"admin", "marketer", "integrator"}, "can_publish": role in {"admin", "marketer"}}


class PreviewRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: dict[str, Any]
    contact: str | None = None
    award: dict[str, Any] | None = None


def contact_context(contact: Contact | None) -> dict[str, Any]:
    """What a message template sees as ``contact``; an empty contact when none is chosen."""
    if contact is None:
        return {"external_id": "", "email": None, "phone": None, "timezone": None, "attributes": {}, "tags": []}
    return {
        "external_id": contact.external_id,
        "email": contact.email,
        "phone": contact.phone,
        "timezone": contact.timezone,
        "attributes": dict(contact.attributes or {}),
        "tags": list(contact.tags or []),
    }


#: A stand-in for what an award node hands on, so ``{{ award.code }}`` previews as something.
SAMPLE_AWARD = {"code": "SAMPLE-1234", "points": 100, "amount": 10}


@post("/editor/preview", guards=[ANY_ROLE], status_code=200, sync_to_thread=True, tags=["editor"])
def preview_message(runtime: Runtime, body: bytes) -> dict[str, Any]:
    """Render every template string of ``message`` for ``contact`` (an external id); stores and sends nothing."""
    try:
        req = msgspec.json.decode(body, type=PreviewRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise HTTPException(status_code=400, detail=f'expected {{"message": {{…}}, "contact": "<external id>"}}: {exc}') from exc
    contact = None
    if req.contact:
        with runtime.sessions() as session:
            contact = session.scalar(select(Contact).where(Contact.external_id == req.contact, Contact.erased_at.is_(None)))
        if contact is None:
            raise NotFoundException(f"no contact with external id {req.contact!r}")
    context = {"contact": contact_context(contact), "award": req.award or SAMPLE_AWARD}
    try:
        return {"contact": req.contact, "rendered": templates.render_message(req.message, context), "error": None}
    except templates.TemplateError as exc:
        return {"contact": req.contact, "rendered": None, "error": str(exc)}


routes = [editor_session, preview_message]
public_routes = [editor_index, editor_path]
