"""The web application's protections: the session secret, security headers, CSRF tokens and who may
see what.

- Sessions: Starlette's signed cookie session (itsdangerous), HttpOnly, SameSite=Strict, 8 hours;
  the secret is 32 random bytes kept owner-only beside the database (`<db>-web/session.key`).
- CSRF: a random token per session, in a hidden field of every form; a POST without the session's
  token is refused (403) before its handler runs. SameSite=Strict already stops cross-site posts in
  current browsers; the token covers the rest (synchroniser token pattern, OWASP CSRF cheat sheet).
- Headers on every response: a content security policy that allows this origin only (no inline
  script, no external origin), no framing, no MIME sniffing, no referrer.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openphm.engine.files import private_dir, write_private
from openphm.web.users import User

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def session_secret(db: Path) -> str:
    """The session-signing secret of the installation, created on first use (owner-only)."""
    db = Path(db)
    path = private_dir(db.with_name(db.stem + "-web")) / "session.key"
    if not path.exists():
        write_private(path, secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip()


class SecurityHeaders:
    """Add HEADERS to every response: plain ASGI middleware (Starlette's BaseHTTPMiddleware runs each
    request through an extra task and stream, which cost more than the header lines)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403) a form post whose token is not the session's."""
    if request.method != "POST":
        return
    form = await request.form()
    sent, expected = str(form.get("csrf_token", "")), request.session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        raise HTTPException(status_code=403, detail="The form was not sent from this site's page (CSRF check).")


def current_user(request: Request) -> User | None:
    """The signed-in user, if any (re-read from the users store, so a removed user is signed out)."""
    from openphm.web.users import get_user

    if "user" in request.state._state:  # read once per request
        return request.state.user
    name = request.session.get("user")
    user = get_user(request.app.state.db_path, name) if name else None
    if name and user is None:
        request.session.clear()
    request.state.user = user
    return user


def require(request: Request, *, person_level: bool = False, direct_care: bool = False) -> User:
    """The signed-in user, or 401 (not signed in) / 403 (role without the right)."""
    user = current_user(request)
    if user is None:
        raise HTTPException(status_code=401, detail="Sign in to see this page.")
    if direct_care and not user.direct_care:
        raise HTTPException(status_code=403, detail="This page is for direct care: your role does not include it.")
    if person_level and not user.person_level:
        raise HTTPException(status_code=403, detail="Your role sees aggregate figures only.")
    return user
