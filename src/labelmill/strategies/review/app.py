"""The review web app: FastAPI over a `ReviewSession`, server-rendered HTML with one small script, no build
step and nothing fetched from a CDN. Binds 127.0.0.1 unless told otherwise.

Security: every request needs an annotator's login (the login link sets an HttpOnly cookie holding a
session id, never the token; or send `Authorization: Bearer TOKEN`), else 401; every POST needs the page's CSRF token in `X-CSRF-Token`, else
403. Row text reaches the page only through `textContent` and escaped attributes, and the Content
Security Policy allows no inline script, so a row holding `<script>` or `<img onerror>` is shown as text.
Static files come from the package's own folder and nowhere else.

Endpoints are `async` and run on the server's one event-loop thread, which owns the SQLite connection;
each review is committed before the response that shows the next row is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from labelmill.types import finite as _finite
from labelmill.errors import InputDataError, LabelmillError
from labelmill.strategies.review.run import MAX_BULK, PROPOSE_MIN_ROWS, ReviewSession, as_dict

STATIC = Path(__file__).parent / "static"
COOKIE = "labelmill_session"
LOGIN_SECONDS = 12 * 3600  # a login lasts a working day; the app's restart ends every login (the links are new)


def create_app(session: ReviewSession, secret: str | None = None) -> FastAPI:
    """The app over `session`: the guard (login token or bearer, CSRF, security headers), the pages, the
    guideline proposals and the review API."""
    key = (secret or secrets.token_hex(32)).encode()
    session.background_refit = True  # no request waits for the loop's refit
    app = FastAPI(title="labelmill review", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def csrf_for(annotator: str) -> str:
        return hmac.new(key, annotator.encode(), hashlib.sha256).hexdigest()

    _add_guard(app, session, csrf_for)
    _add_pages(app, session, csrf_for)
    _add_guideline_api(app, session)
    _add_review_api(app, session)
    _add_team_api(app, session)
    return app


def _add_guard(app: FastAPI, session: ReviewSession, csrf_for: Any) -> None:
    """Every path but the static files and /login needs a known annotator's token (cookie or bearer) and,
    for a write, the CSRF token of that annotator; every response carries the security headers."""

    logins: dict[str, tuple[str, float]] = {}  # sha256(session id) -> (annotator, expiry): the cookie holds a session id, never the token

    def who(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return session.log.annotator_for(auth[7:].strip())
        login = logins.get(hashlib.sha256(request.cookies.get(COOKIE, "").encode()).hexdigest())
        if login is None or login[1] < time.time() or login[0] not in session.log.annotators():
            return None
        return login[0]

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if path.startswith("/static/") or path == "/login":
            response = await call_next(request)
        else:
            annotator = who(request)
            if annotator is None:
                return JSONResponse({"error": "unauthorized: open the login link labelmill review printed, or send Authorization: Bearer TOKEN"},
                                    status_code=401)
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                sent = request.headers.get("x-csrf-token", "")
                if not hmac.compare_digest(sent, csrf_for(annotator)):
                    return JSONResponse({"error": "forbidden: missing or wrong CSRF token"}, status_code=403)
            request.state.annotator = annotator
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/login")
    async def login(token: str = ""):
        annotator = session.log.annotator_for(token)
        if annotator is None:
            return JSONResponse({"error": "unauthorized: unknown token"}, status_code=401)
        sid = secrets.token_urlsafe(32)
        for key in [k for k, (_, expiry) in logins.items() if expiry < time.time()]:  # expired logins go
            del logins[key]
        logins[hashlib.sha256(sid.encode()).hexdigest()] = (annotator, time.time() + LOGIN_SECONDS)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=LOGIN_SECONDS)
        return response


def _add_pages(app: FastAPI, session: ReviewSession, csrf_for: Any) -> None:
    """The review, conflicts and guideline pages: server-rendered HTML with one script each."""

    def page(annotator: str, title: str, body: str, script: str) -> HTMLResponse:
        config = {
            "task": session.config.task, "labels": _label_names(session), "csrf": csrf_for(annotator), "annotator": annotator,
            "blind": session.blind, "guidelines": session.config.guidelines or "",
            "relation_types": [k.name for k in session.config.relation.types] if session.config.task == "relations" else [],
        }
        team = ('<a href="/conflicts">conflicts</a> <a href="/api/export?format=jsonl" id="export-jsonl">export JSONL</a> '
                '<a href="/api/export?format=label-studio" id="export-ls">export Label Studio</a> ') if sees_others(session, annotator) else ""
        text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/review.css"></head>
<body data-config="{html.escape(json.dumps(config), quote=True)}">
<header><strong>labelmill review</strong> <span class="muted">{html.escape(session.config.name or session.config.task)}</span>
<nav><a href="/">review</a> {team}<a href="/guideline">guideline</a></nav>
<span class="muted">signed in as {html.escape(annotator)}</span></header>
{body}
<script src="/static/{script}"></script></body></html>"""
        return HTMLResponse(text)

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request):
        body = """<main>
<section id="status" class="status" aria-live="polite"></section>
<section id="row" class="row"><p class="muted">loading...</p></section>
<section id="keys" class="muted keys">digits pick a label (type two for labels past 9) &middot; Enter accepts &middot; &larr; &rarr; move &middot; Z undoes &middot; B accepts the confident cluster</section>
<aside><h3>Guideline</h3><pre id="guideline"></pre><h3>Nearest reviewed rows</h3><ol id="nearest"></ol></aside>
</main>"""
        return page(request.state.annotator, "labelmill review", body, "review.js")

    @app.get("/conflicts", response_class=HTMLResponse)
    async def conflicts_page(request: Request):
        body = '<main><h2>Conflicts</h2><p class="muted">Rows where annotators disagree. Pick the label that stands.</p><div id="conflicts"></div></main>'
        return page(request.state.annotator, "labelmill review: conflicts", body, "conflicts.js")

    @app.get("/guideline", response_class=HTMLResponse)
    async def guideline_page(request: Request):
        body = ('<main class="single"><h2>Guideline</h2><p class="muted">Edits that <code>labelmill refine ... --review</code> proposed from the '
                "model's errors, each with its evidence, or that this page proposed from the reviewed rows. Accept, edit or reject them; "
                "the next proposal round (or refine) scores the ones you kept.</p>"
                '<p><button id="propose">propose edits from the reviewed rows</button> <span id="propose-state" class="muted"></span></p>'

                '<div id="proposals"></div><h3>Current version</h3><pre id="current"></pre></main>')
        return page(request.state.annotator, "labelmill review: guideline", body, "guideline.js")


def _add_guideline_api(app: FastAPI, session: ReviewSession) -> None:
    """The proposals refine left for people, and their decisions."""

    def proposals():
        from labelmill.strategies.refine.proposals import Proposals
        from labelmill.strategies.refine.versions import GuidelineVersions

        name = session.config.name or session.config.task
        return Proposals(session.store, name), GuidelineVersions(session.store, name)

    @app.get("/api/proposals")
    async def list_proposals():
        found, versions = proposals()
        head = versions.get(versions.head_id(), missing_ok=True)
        return JSONResponse({"head": head.id if head else None, "guideline": head.content if head else (session.config.guidelines or ""),
                             "proposals": [{k: v for k, v in vars(x).items() if k != "name"} for x in found.list()],
                             "proposing": session.background_job == "guideline", "reviewed": len(session.reviewed())})

    @app.post("/api/propose")
    async def propose():
        """Start a proposal round from the reviewed rows (refine, in the background; the body is not read)."""
        reviewed = len(session.reviewed())
        if reviewed < PROPOSE_MIN_ROWS:
            return JSONResponse({"error": f"proposals need {PROPOSE_MIN_ROWS} reviewed rows (refine holds half out); {reviewed} so far"}, status_code=400)
        started = session.propose_in_background()
        return JSONResponse({"started": started, "busy": None if started else session.background_job})

    @app.post("/api/proposal")
    async def decide_proposal(request: Request):
        try:
            data = await _body_of(request, _ProposalDecision)
            found, _ = proposals()
            decided = found.decide(data.key, data.action, request.state.annotator, data.text)
        except (LabelmillError, ValidationError, ValueError, TypeError) as exc:
            return _bad(exc)
        return JSONResponse({"saved": decided.key, "status": decided.status})


def _add_review_api(app: FastAPI, session: ReviewSession) -> None:
    """Rows, reviews, undo, bulk accept and status."""

    @app.get("/api/status")
    async def status(request: Request):
        return JSONResponse(_finite(_status(session, request)))

    @app.get("/api/next")
    async def next_row(request: Request):
        view = session.next_row(request.state.annotator)
        return JSONResponse({"row": None if view is None else _finite(as_dict(view)), "status": _finite(_status(session, request))})

    @app.get("/api/row/{index}")
    async def one_row(index: int, request: Request):
        try:
            return JSONResponse({"row": _finite(as_dict(session.view(index, request.state.annotator)))})
        except InputDataError as exc:
            return _bad(exc, 404)

    @app.post("/api/review")
    async def review(request: Request):
        rid, error = await _decide(request, session.submit)
        if error is not None:
            return error
        view = session.next_row(request.state.annotator)
        return JSONResponse({"saved": rid, "row": None if view is None else _finite(as_dict(view)), "status": _finite(_status(session, request))})

    @app.post("/api/undo")
    async def undo(request: Request):
        row = session.undo(request.state.annotator)
        if row is None:
            return JSONResponse({"undone": None, "status": _finite(_status(session, request))})
        return JSONResponse({"undone": row, "row": _finite(as_dict(session.view(row, request.state.annotator))), "status": _finite(_status(session, request))})

    @app.post("/api/bulk_accept")
    async def bulk(request: Request):
        try:
            rows = (await _body_of(request, _Bulk)).rows
            count = session.bulk_accept(request.state.annotator, rows)
        except (LabelmillError, ValidationError, ValueError, TypeError) as exc:
            return _bad(exc)
        return JSONResponse({"accepted": count, "status": _finite(_status(session, request))})



def _add_team_api(app: FastAPI, session: ReviewSession) -> None:
    """Conflicts between annotators and their resolution, and the exports."""

    @app.get("/api/conflicts")
    async def conflicts(request: Request):
        if not sees_others(session, request.state.annotator):
            return JSONResponse({"error": BLIND}, status_code=403)
        _, found = session.log.final()
        ratings = session.log.ratings()
        return JSONResponse({"labels": _label_names(session), "conflicts": [
            {"row": i, "text": session.texts[i], "ratings": given} for i, given in sorted(found.items())], "resolved": [
            {"row": r.row_index, "text": session.texts[r.row_index], "ratings": ratings.get(r.row_index, {}), "label": r.label, "by": r.annotator}
            for r in session.log.resolutions()]})

    @app.post("/api/resolve")
    async def resolve(request: Request):
        if session.reviewers is not None and request.state.annotator not in session.reviewers:
            return JSONResponse({"error": "forbidden: only the reviewers named at start resolve conflicts"}, status_code=403)
        rid, error = await _decide(request, session.resolve)
        return error if error is not None else JSONResponse({"saved": rid})

    @app.post("/api/unresolve")
    async def unresolve(request: Request):
        if session.reviewers is not None and request.state.annotator not in session.reviewers:
            return JSONResponse({"error": "forbidden: only the reviewers named at start undo a resolution"}, status_code=403)
        try:
            data = await _body_of(request, _RowOnly)
            return JSONResponse({"undone": session.unresolve(request.state.annotator, data.row)})
        except (LabelmillError, ValidationError, ValueError, TypeError) as exc:
            return _bad(exc)

    @app.get("/api/export")
    async def export(request: Request, format: str = "jsonl"):
        from labelmill.strategies.review.exports import EXPORTS, export_bytes

        if not sees_others(session, request.state.annotator):
            return JSONResponse({"error": BLIND}, status_code=403)
        if format not in EXPORTS:
            return JSONResponse({"error": f"unknown format {format!r}; one of {', '.join(EXPORTS)}"}, status_code=400)
        try:
            data, filename, media = export_bytes(session, format)
        except (LabelmillError, ValueError) as exc:  # e.g. conll on a classification project
            return _bad(exc)
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


MAX_BODY = 1_000_000  # bytes of one request body (a row's spans or a relation list are far smaller)


class _Decision(BaseModel):
    """A review or a resolution: the row (a whole number; `"21"`, `22.9` and `true` are refused) and the label."""

    model_config = ConfigDict(extra="ignore")
    row: StrictInt
    label: Any = None


class _RowOnly(BaseModel):
    """A request about one row (undoing its resolution): a whole number, as in `_Decision`."""

    model_config = ConfigDict(extra="ignore")
    row: StrictInt


class _Bulk(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rows: list[StrictInt] = Field(max_length=MAX_BULK)


class _ProposalDecision(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: StrictStr = Field(max_length=200)
    action: StrictStr = Field(max_length=20)
    text: StrictStr | None = Field(None, max_length=5000)


def _short(message: str, limit: int = 300) -> str:
    """An error message that never echoes a large input back."""
    return message if len(message) <= limit else message[:limit] + f"... ({len(message) - limit} more characters)"


def _bad(exc: Exception, status: int = 400) -> JSONResponse:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return JSONResponse({"error": _short(f"{where}: {first.get('msg', 'invalid')}")}, status_code=status)
    return JSONResponse({"error": _short(getattr(exc, "message", None) or str(exc))}, status_code=status)


async def _body_of(request: Request, model: type[BaseModel] | None = None) -> Any:
    """The request's JSON object (at most `MAX_BODY` bytes, any nesting a parser survives), validated by
    `model` when given; InputDataError or ValidationError otherwise."""
    raw = bytearray()
    async for chunk in request.stream():  # read no further than the cap, whatever Content-Length says
        raw += chunk
        if len(raw) > MAX_BODY:
            raise InputDataError(f"the request body is over {MAX_BODY:,} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise InputDataError("the request body must be a JSON object")
    return data if model is None else model.model_validate(data)


async def _decide(request: Request, act) -> tuple[Any, JSONResponse | None]:
    """Run `act(annotator, row, label)` on the request's JSON; a bad body, row or label is a 400."""
    try:
        data = await _body_of(request, _Decision)
        return act(request.state.annotator, data.row, data.label), None
    except (LabelmillError, ValidationError, ValueError, TypeError) as exc:
        return None, _bad(exc)


BLIND = "forbidden: in blind mode only the reviewers named at start (--reviewer) see others' answers and the model's labels"


def sees_others(session: ReviewSession, annotator: str) -> bool:
    """Whether `annotator` may see others' answers and the model's labels (conflicts, exports): always,
    unless the session is blind; then only a declared reviewer."""
    return not session.blind or (session.reviewers is not None and annotator in session.reviewers)


def _status(session: ReviewSession, request: Request) -> dict[str, Any]:
    """The session's status and the asking annotator's own count of reviewed rows (in blind mode, for one
    who is not a reviewer, without the others' names and how they agree)."""
    status = {**session.status(), "yours": session.log.rated_by(request.state.annotator)}
    if not sees_others(session, request.state.annotator):
        status.update(annotators=[request.state.annotator], agreement=None, fit=None)
    return status


def _label_names(session: ReviewSession) -> list[str]:
    names = session.names or list(getattr(session.task, "labels", None) or [])
    if not names and session.config.task in ("ner", "multilabel", "relations", "roles"):
        names = list(session.config.label_names)
    return [str(n) for n in names]
