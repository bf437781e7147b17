"""The console's session: the same access token the API issues, kept in a cookie (Secure, HttpOnly,
SameSite=Strict) that expires with it; every form carries a CSRF token derived from it.

The cookie is read only by the console's routes: the API keeps its bearer tokens, so a page on
another site can never make the API act with a handler's cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response

from service.accounts.domain import STAFF_ROLES
from service.auth import Principal, principal_for_token
from service.clock import Now
from service.db import SessionDep
from service.errors import Unauthenticated

SESSION_COOKIE = "snp_console"
# Before sign-in: a random value the login form echoes (no login CSRF from another site).
LOGIN_COOKIE = "snp_console_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
PATH = "/console"


class LoginRequired(Exception):
    """No valid session: the console answers with the login page (or, to htmx, a redirect to it)."""


class CsrfRefused(Exception):
    """A form without the session's CSRF token."""


def csrf_token(secret: str, session_token: str) -> str:
    """Bound to the session (a new sign-in, a new token), unguessable without the server's secret."""
    return hmac.new(secret.encode(), b"console-csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def set_session(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, path=PATH, secure=True, httponly=True, samesite="strict"
    )
    response.delete_cookie(LOGIN_COOKIE, path=PATH, secure=True, httponly=True, samesite="strict")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PATH, secure=True, httponly=True, samesite="strict")


def login_nonce(request: Request) -> str:
    """The value the login form must echo (the cookie's, or a new one)."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def remember_login_nonce(response: Response, nonce: str) -> None:
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path=PATH, secure=True, httponly=True, samesite="strict")


def login_nonce_ok(request: Request, sent: str | None) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE)
    return bool(expected and sent and hmac.compare_digest(expected, sent))


async def console_principal(request: Request, session: SessionDep, now: Now) -> Principal:
    """The signed-in staff member; a changing request must carry the session's CSRF token (form
    field or, from htmx, header)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired
    try:
        principal = await principal_for_token(request, session, now, token)
    except Unauthenticated as exc:
        raise LoginRequired from exc
    if principal.kind != "user" or principal.role not in STAFF_ROLES:
        raise LoginRequired
    if request.method not in ("GET", "HEAD"):
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        expected = csrf_token(request.app.state.settings.secret_key.get_secret_value(), token)
        if not sent or not hmac.compare_digest(sent, expected):
            raise CsrfRefused
    request.state.csrf = csrf_token(request.app.state.settings.secret_key.get_secret_value(), token)
    return principal


ConsoleUser = Annotated[Principal, Depends(console_principal)]
