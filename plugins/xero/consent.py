"""The one-time consent step: authorise the app, receive the code locally, store the first token.

:func:`run_consent` drives the OAuth2 authorization-code flow for one ``xero`` connection: it prints
(and usually opens) the consent URL, receives the code on a local redirect server at
``http://localhost:<port>/callback``, trades it for tokens with :func:`xero.auth.exchange_code`, saves
them in the connection's token store and lists the organisations granted (``GET /connections``). The
command ``python -m xero auth --conn-id xero_default`` (:mod:`xero.__main__`) calls it.

:func:`obtain_refresh_token_headless` does the same flow against a server that consents without a
browser (the local sandbox) and returns the refresh token; demos and tests use it.

Tokens and the client secret are never printed or logged.
"""

from __future__ import annotations

import http.server
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from xero.auth import build_authorization_url, exchange_code, mask_secret
from xero.exceptions import XeroAuthError
from xero.scopes import requested_scopes
from xero.tokens import Token, TokenStore

#: Seconds :func:`run_consent` waits for the browser to come back.
DEFAULT_CONSENT_TIMEOUT = 300.0

#: Environment variable naming the interface the redirect server listens on (default ``localhost``). A container
#: sets ``0.0.0.0`` and its host publishes the port on 127.0.0.1 only; the redirect URI stays ``localhost``.
LISTEN_HOST_ENV = "XERO_CONSENT_HOST"


class _MemoryStore:
    """A token store in memory (for the headless flow, which only returns the refresh token)."""

    def __init__(self) -> None:
        self.token: Token | None = None

    def __repr__(self) -> str:
        return "_MemoryStore()"

    def load(self) -> Token | None:
        return self.token

    def save(self, token: Token) -> None:
        self.token = dict(token)


def _code_from_query(query: dict[str, list[str]], state: str) -> str:
    """Return the authorization code of a redirect's query, checking ``state`` and Xero's ``error``."""
    if query.get("error"):
        raise XeroAuthError(f"Xero refused the consent: {query['error'][0]}")
    if query.get("state", [""])[0] != state:
        raise XeroAuthError("the consent redirect carried a different state; start the consent again")
    code = query.get("code", [""])[0]
    if not code:
        raise XeroAuthError("the consent redirect carried no authorization code")
    return code


def obtain_refresh_token_headless(
    base_url: str, client_id: str, client_secret: str, scopes: Sequence[str] | None = None
) -> str:
    """Run the consent flow against an auto-consenting server (the sandbox) and return the refresh token.

    :param base_url: the identity server, e.g. ``http://127.0.0.1:8765``.
    :param client_id: the app's client id.
    :param client_secret: the app's client secret.
    :param scopes: scopes to grant; the granular read scopes of every entity (and ``offline_access``)
        by default.
    """
    base = base_url.rstrip("/")
    redirect_uri = "http://localhost/callback"
    url, state = build_authorization_url(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=requested_scopes(list(scopes)) if scopes else requested_scopes("granular"),
        authorize_url=f"{base}/connect/authorize",
    )
    response = requests.get(url, allow_redirects=False, timeout=30)
    location = response.headers.get("Location", "")
    if response.status_code not in (301, 302, 303, 307) or not location.startswith(redirect_uri):
        raise XeroAuthError(f"the authorize endpoint did not redirect back (HTTP {response.status_code})")
    store = _MemoryStore()
    exchange_code(
        client_id=client_id,
        client_secret=client_secret,
        token_url=f"{base}/connect/token",
        redirect_uri=redirect_uri,
        code=_code_from_query(parse_qs(urlsplit(location).query), state),
        store=store,
    )
    refresh_token = (store.token or {}).get("refresh_token")
    if not refresh_token:
        raise XeroAuthError("Xero returned no refresh token; the grant needs the offline_access scope")
    return str(refresh_token)


@dataclass
class ConsentResult:
    """What a consent granted: the organisations connected and the scopes (never the tokens)."""

    tenants: list[dict[str, Any]]
    scope: str


class _CallbackServer(http.server.ThreadingHTTPServer):
    """A local server that waits for one ``/callback`` request."""

    daemon_threads = True

    def __init__(self, port: int) -> None:
        self.query: dict[str, list[str]] | None = None
        self.received = threading.Event()
        super().__init__((os.environ.get(LISTEN_HOST_ENV) or "localhost", port), _CallbackHandler)


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404)
            return
        if not self.server.received.is_set():
            self.server.query = parse_qs(parts.query)
            self.server.received.set()
        body = b"Xero consent received. You can close this window and return to the terminal.\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: the request line carries the authorization code."""


def run_consent(
    *,
    client_id: str,
    client_secret: str,
    scopes: Sequence[str],
    authorize_url: str,
    token_url: str,
    connections_url: str,
    store: TokenStore,
    port: int = 8765,
    open_url: Callable[[str], Any] | None = None,
    echo: Callable[[str], None] = print,
    timeout: float = DEFAULT_CONSENT_TIMEOUT,
) -> ConsentResult:
    """Run the consent flow with a local redirect server and save the first token in ``store``.

    :param client_id: the app's client id.
    :param client_secret: the app's client secret.
    :param scopes: scopes to request (with ``offline_access`` to get a refresh token).
    :param authorize_url: Xero's consent page.
    :param token_url: Xero's token endpoint.
    :param connections_url: Xero's ``/connections`` endpoint (to list the organisations granted).
    :param store: the connection's token store.
    :param port: local port of the redirect server (0 picks a free one); the app must list
        ``http://localhost:<port>/callback`` as a redirect URI.
    :param open_url: opens the consent URL (a web browser); ``None`` only prints it.
    :param echo: prints a line for the operator.
    :param timeout: seconds to wait for the redirect.
    """
    mask_secret(client_secret)
    server = _CallbackServer(port)
    redirect_uri = f"http://localhost:{server.server_address[1]}/callback"
    thread = threading.Thread(target=server.serve_forever, name="xero-consent-callback", daemon=True)
    thread.start()
    try:
        url, state = build_authorization_url(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            authorize_url=authorize_url,
            state=secrets.token_urlsafe(24),
        )
        echo(f"Open this URL to connect the app to Xero (redirect URI {redirect_uri}):")
        echo(url)
        if open_url is not None:
            open_url(url)
        if not server.received.wait(timeout):
            raise XeroAuthError(f"no consent received on {redirect_uri} within {timeout:.0f} s")
        query = server.query or {}
    finally:
        server.shutdown()
        server.server_close()
    code = _code_from_query(query, state)
    exchange_code(
        client_id=client_id,
        client_secret=client_secret,
        token_url=token_url,
        redirect_uri=redirect_uri,
        code=code,
        store=store,
    )
    token = store.load() or {}
    response = requests.get(
        connections_url,
        headers={"Authorization": f"Bearer {token.get('access_token', '')}", "Accept": "application/json"},
        timeout=60,
    )
    if response.status_code != 200:
        raise XeroAuthError(f"the token was stored, but GET /connections failed: HTTP {response.status_code}")
    tenants = [dict(item) for item in response.json()]
    return ConsentResult(tenants=tenants, scope=str(token.get("scope") or " ".join(scopes)))
