"""The web app of ``contextfs ui``: Starlette routes over one repository, pages from Jinja2.

Invariants this module owns:

* every page is rendered from the library API (:class:`~contextfs.Repository`)
  while holding one lock, so the one store connection is never used by two
  requests at once;
* a server whose store has tokens (or that was given one) lets a browser in
  only with one: ``?token=`` once, then a cookie holding a random session
  id (never the token) that this process maps to the token; the cookie is
  HttpOnly, SameSite=Lax, named after the port (so two servers on one host
  keep theirs apart), and Secure under TLS; API clients may send
  ``Authorization: Bearer``;
* a write is a POST from a server started with ``--write``, by a grant
  whose scope allows it, whose ``Origin`` (when sent) is this server, whose
  body is small, and that carries the page's CSRF field (an HMAC of the
  browser's session under a per-process key); anything else is refused with
  a page and a non-2xx status, and changes nothing;
* every response forbids framing and sniffing and sends no referrer to
  other sites, so another site can neither frame a page nor learn its
  addresses;
* an error is a page with a status: 400 for bad input, 404 for what does
  not exist, 403 for what is not allowed; never a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ..errors import (
    AmbiguousRevisionError,
    ContextFSError,
    InvalidInputError,
    PermissionDeniedError,
    RevisionError,
)
from ..model.ids import short
from ..repo import Repository
from ..services.workspace import DEFAULT_AUTHOR
from ..tokens import FULL, Gate, Grant
from ..tokens import Scope as TokenScope

#: The cookie a browser keeps its session in (``contextfs_session_PORT``), after ``?token=`` once.
SESSION_COOKIE = "contextfs_session"
#: The largest form a write may post (its fields are a few ids and names).
FORM_LIMIT = 64 * 1024
#: What every response says about framing, sniffing, referrers and caching.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: Where a grant travels in a request's scope.
GRANT_KEY = "contextfs.grant"

Page = Callable[["UI", Request], Awaitable[Response] | Response]


@dataclass
class UI:
    """What every page needs: the repository, its lock, the templates, and the rules."""

    repo: Repository
    write: bool = False
    gate: Gate | None = None
    #: Who a write is by when the grant names nobody (no token, or the shared one).
    author: str = DEFAULT_AUTHOR
    lock: threading.Lock = field(default_factory=threading.Lock)
    csrf_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    #: Browser sessions: the random id a cookie holds, and the token it stands for.
    sessions: dict[str, str] = field(default_factory=dict)
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("contextfs.ui", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(short=short, version=__version__)

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        """A page: ``template`` filled with ``values`` and what every page shows."""
        grant = grant_of(request)
        html = self.env.get_template(template).render(
            request=request,
            path=request.url.path,
            writable=self.can_write(grant),
            csrf=self.csrf_token(request),
            signed_in=grant.name,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def can_write(self, grant: Grant) -> bool:
        return self.write and grant.scope >= TokenScope.WRITE

    def csrf_token(self, request: Request) -> str:
        """The form field a write must carry: bound to this process and this browser's session."""
        session = request.cookies.get(session_cookie(request), "")
        return hmac.new(self.csrf_key, session.encode(), hashlib.sha256).hexdigest()

    async def check_write(self, request: Request) -> dict[str, str]:
        """The form of a write that may go ahead; raises :class:`HTTPException` otherwise."""
        if not self.write:
            raise HTTPException(403, "this server is read-only: start it with --write")
        grant = grant_of(request)
        if grant.scope < TokenScope.WRITE:
            who = f"the token {grant.name}" if grant.name else "this token"
            raise HTTPException(403, f"{who} is read-only: it cannot write")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "the form came from another site")
        length = request.headers.get("content-length", "")
        if not length.isascii() or not length.isdigit() or int(length) > FORM_LIMIT:
            raise HTTPException(413, f"a form may be at most {FORM_LIMIT // 1024} KiB")
        form = await request.form(max_files=0, max_fields=64)
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        if not hmac.compare_digest(values.get("csrf", ""), self.csrf_token(request)):
            raise HTTPException(403, "the form is stale or forged: reload the page and try again")
        return values

    async def run(self, work: Callable[[Repository], Any]) -> Any:
        """Run ``work`` on the repository in a worker thread, under the lock."""

        def locked() -> Any:
            with self.lock:  # one store connection: one request at a time
                return work(self.repo)

        return await anyio.to_thread.run_sync(locked)


def grant_of(request: Request) -> Grant:
    """What the request's bearer may do (everything on an open server)."""
    grant = request.scope.get(GRANT_KEY)
    return grant if isinstance(grant, Grant) else FULL


def session_cookie(request: Request) -> str:
    """The session cookie's name on this server: one per port, so servers keep theirs apart."""
    return f"{SESSION_COOKIE}_{request.url.port or 0}"


class TokenCookieGate:
    """ASGI middleware: a closed server admits a token from a header, ``?token=`` or a session.

    ``?token=`` opens a session (a random id in a cookie, mapped here to the
    token) and redirects to the same page without it, so the token stays
    neither in the address bar, the history, nor the cookie.
    """

    def __init__(self, app: ASGIApp, gate: Gate, sessions: dict[str, str]) -> None:
        self.app = app
        self.gate = gate
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        from_query = request.query_params.get("token")
        session = request.cookies.get(session_cookie(request), "")
        presented = from_query or _bearer(request) or self.sessions.get(session)
        grant = await anyio.to_thread.run_sync(self.gate.admit, presented)
        if grant is None:
            response: Response = HTMLResponse(
                _refusal_page(), status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await response(scope, receive, send)
            return
        if from_query:
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            path = "/" + request.url.path.lstrip("/")  # never "//host": no open redirect
            target = path + (f"?{urlencode(kept)}" if kept else "")
            response = RedirectResponse(target, status_code=303)
            opened = secrets.token_urlsafe(32)
            self.sessions[opened] = from_query
            response.set_cookie(
                session_cookie(request),
                opened,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                path="/",
            )
            await response(scope, receive, send)
            return
        await self.app({**scope, GRANT_KEY: grant}, receive, send)


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def _bearer(request: Request) -> str | None:
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if kind.lower() == "bearer" and token.strip() else None


def _refusal_page() -> str:
    return (
        "<!doctype html><title>Token needed</title><h1>Token needed</h1>"
        "<p>This ContextFS server needs a token: open it as <code>/?token=cfs_...</code>"
        " (see <code>contextfs token create</code>).</p>"
    )


def page(ui: UI, handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that runs ``handler`` and turns our errors into pages."""

    async def endpoint(request: Request) -> Response:
        try:
            result = handler(ui, request)
            return await result if isinstance(result, Awaitable) else result
        except HTTPException as exc:
            return error_page(ui, request, exc.status_code, str(exc.detail))
        except AmbiguousRevisionError as exc:  # a prefix of several: say more, not "missing"
            return error_page(ui, request, 400, _one_line(exc))
        except (RevisionError, FileNotFoundError) as exc:
            return error_page(ui, request, 404, _one_line(exc))
        except PermissionDeniedError as exc:
            return error_page(ui, request, 403, _one_line(exc))
        except InvalidInputError as exc:
            return error_page(ui, request, 400, _one_line(exc))
        except ContextFSError as exc:
            return error_page(ui, request, 409, _one_line(exc))

    return endpoint


def error_page(ui: UI, request: Request, status: int, message: str) -> Response:
    return ui.render(request, "error.html", status=status, status_code=status, message=message)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def build_app(
    repo: Repository,
    *,
    write: bool = False,
    gate: Gate | None = None,
    author: str = DEFAULT_AUTHOR,
    pages: list[tuple[str, Page, list[str]]] | None = None,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The app over ``repo``: every page, the static files, and the token gate.

    ``allowed_hosts`` are the names a request's ``Host`` may carry (a server
    on loopback answers only to loopback names, so a page of another site
    that rebinds its own name to 127.0.0.1 reads nothing).
    """
    from .pages import PAGES

    ui = UI(repo, write=write, gate=gate, author=author)
    routes: list[BaseRoute] = [
        Route(path, page(ui, handler), methods=methods)
        for path, handler, methods in (pages if pages is not None else PAGES)
    ]
    static = StaticFiles(packages=[("contextfs.ui", "static")])
    routes.append(Mount("/static", app=static, name="static"))

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_page(ui, request, 404, "no such page")

    async def server_error(request: Request, exc: Exception) -> Response:
        # The traceback goes to the server's stderr; the page says only what failed.
        return error_page(ui, request, 500, f"the server failed: {type(exc).__name__}")

    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    if gate is not None:
        middleware.append(Middleware(TokenCookieGate, gate=gate, sessions=ui.sessions))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: not_found, Exception: server_error},
    )
    app.state.ui = ui
    return app
