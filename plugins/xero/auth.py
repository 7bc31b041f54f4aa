"""OAuth2 for Xero: access tokens from a rotating refresh token or from client credentials.

This module is the only place that talks to Xero's token endpoint. :class:`TokenManager` hands out a
valid access token and refreshes it at most once per token lifetime:

1. A cached or stored access token that is still valid for more than ``margin`` seconds (2 minutes) is
   used as is, so consecutive tasks share one token until it nears expiry.
2. Otherwise the manager takes the store's exclusive lock and re-reads the store: another process may
   have refreshed meanwhile, in which case its token is used and nothing is spent.
3. Otherwise it spends the refresh token (or, for ``client_credentials``, asks for a new token), and
   **persists the rotated refresh token before** the new access token is returned to anyone. Xero's
   refresh tokens are single-use, so a token that is used but not saved would strand the connection.

Refresh tokens expire when unused for 60 days. The stored token records when its refresh token was
issued (``refresh_token_issued_at``); a warning is logged once it is ``warn_age`` (45 days) old, and a
refresh token older than ``keep_alive_age`` (7 days) is spent even while the access token is valid,
at most once per manager (one task run), so a scheduled DAG keeps the grant alive.

``invalid_grant`` (refresh token spent, revoked or older than 60 days) becomes an :class:`XeroAuthError`
telling the operator to re-run the consent step. The connection's ``refresh_token`` extra bootstraps the
store: it is copied in when the store is empty, or when the operator puts a *different* one there
after a new consent (a fingerprint of the last imported value is kept to tell).

Tokens are registered with Airflow's secrets masker and never appear in messages or reprs; the DEBUG
logs of ``requests_oauthlib``, which print token bodies, are filtered out.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from xero import log_redaction
from xero.exceptions import XeroAuthError, XeroConfigError, XeroRateLimitError, XeroServerError, unreachable
from xero.tokens import Token, TokenLock, TokenStore, consent_hint

log = logging.getLogger(__name__)

GrantType = Literal["authorization_code", "client_credentials"]

#: A stored access token is refreshed when it has less than this many seconds left.
DEFAULT_MARGIN = 120.0

#: Xero refresh tokens expire after this many seconds unused.
REFRESH_TOKEN_LIFETIME = 60 * 86_400.0
#: A warning is logged when the stored refresh token is this old.
DEFAULT_WARN_AGE = 45 * 86_400.0
#: A refresh token older than this is rotated even while the access token is valid (keeps the grant alive).
DEFAULT_KEEP_ALIVE_AGE = 7 * 86_400.0
#: Offered by :meth:`TokenManager.check_client`: no server ever issued it, so nothing can be spent.
_PROBE_REFRESH_TOKEN = "airflow-xero-connection-test-not-a-token"


class AccessTokenProvider(Protocol):
    """What the HTTP client needs from authentication."""

    def access_token(self) -> str:
        """Return a valid access token."""
        ...

    def refresh(self, stale_access_token: str | None = None) -> str:
        """Return a new access token, unless another process already replaced ``stale_access_token``."""
        ...


class _DropBelowWarning(logging.Filter):
    """Drop DEBUG/INFO records: requests_oauthlib logs request bodies and tokens at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


log_redaction.install()  # before any connection is read: Airflow masks its fields through the supervisor

for _name in ("requests_oauthlib.oauth2_session", "requests_oauthlib.oauth2_auth"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _DropBelowWarning) for f in _logger.filters):
        _logger.addFilter(_DropBelowWarning())


def mask_secret(secret: str | None) -> None:
    """Register ``secret`` with Airflow's secrets masker so task logs redact it, at every level.

    First installs (once) the processor that keeps the registration request itself, and the supervisor's
    other requests, from printing secrets at DEBUG (see :mod:`xero.log_redaction`).
    """
    if not secret:
        return
    with contextlib.suppress(Exception):
        from airflow.sdk.log import mask_secret as _mask  # may configure Airflow's logging: install after

        log_redaction.install()
        _mask(secret)


def fingerprint(secret: str) -> str:
    """Return a short one-way fingerprint of ``secret`` (to recognise it without keeping it)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


_insecure_lock = threading.Lock()


def is_loopback(url: str) -> bool:
    """Tell whether ``url`` points at this machine (a local sandbox)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _allow_loopback_http(url: str) -> Iterator[None]:
    """Let oauthlib use plain HTTP for a loopback URL (a local sandbox); HTTPS is required otherwise."""
    if (
        not url.lower().startswith("http://")
        or not is_loopback(url)
        or os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    ):
        yield
        return
    with _insecure_lock:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        try:
            yield
        finally:
            os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)


def identity_base(token_url: str) -> str:
    """Return the ``identity_url`` setting behind ``token_url`` (``<identity_url>/connect/token``)."""
    return token_url.removesuffix("/connect/token")


def _check_token_response(response: requests.Response, *, conn_id: str | None = None) -> requests.Response:
    """Raise retryable errors for 5xx/429 from the token endpoint before oauthlib parses the body.

    A 404, or a web page instead of JSON, means ``identity_url`` is not Xero's identity server: that is
    a setting to fix (:class:`~xero.exceptions.XeroConfigError`), never retried.
    """
    html = "text/html" in response.headers.get("Content-Type", "").lower()
    if response.status_code == 404 or (html and response.status_code < 500 and response.status_code != 429):
        where = identity_base(response.url or "") or "the identity URL"
        raise XeroConfigError(
            "identity_url",
            f"the token endpoint {response.url} answered HTTP {response.status_code}"
            + (" with a web page" if html else "")
            + f": {where} is not Xero's identity server; set it to https://identity.xero.com",
            conn_id=conn_id,
        )
    if response.status_code >= 500:
        raise XeroServerError(
            f"Xero token endpoint failed: HTTP {response.status_code}", status=response.status_code
        )
    if response.status_code == 429:
        retry_after = response.headers.get("Retry-After")
        raise XeroRateLimitError(
            "Xero token endpoint rate limit (HTTP 429)",
            status=429,
            problem="token",
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    return response


class TokenManager:
    """Hand out access tokens; refresh under a lock and persist rotated refresh tokens first.

    :param client_id: the app's client id.
    :param client_secret: the app's client secret.
    :param token_url: Xero's token endpoint (``<identity_url>/connect/token``).
    :param store: where the token set lives between tasks.
    :param lock: held while refreshing.
    :param grant_type: ``authorization_code`` (refresh-token rotation) or ``client_credentials``.
    :param scopes: scopes requested on the client-credentials grant.
    :param bootstrap_refresh_token: refresh token from the connection extra, copied into an empty store.
    :param conn_id: connection id, for messages.
    :param timeout: seconds for a token request.
    :param margin: seconds of validity below which a stored access token is refreshed.
    :param keep_alive_age: a refresh token older than this (seconds) is rotated even while the access
        token is valid, once per manager; ``None`` disables it.
    :param warn_age: a refresh token this old (seconds) is warned about.
    :param clock: returns Unix seconds (injectable for tests).
    :param session_factory: builds the ``OAuth2Session`` (injectable for tests).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        store: TokenStore,
        lock: TokenLock,
        grant_type: GrantType = "authorization_code",
        scopes: Sequence[str] = (),
        bootstrap_refresh_token: str | None = None,
        conn_id: str = "xero_default",
        timeout: float = 60.0,
        margin: float = DEFAULT_MARGIN,
        keep_alive_age: float | None = DEFAULT_KEEP_ALIVE_AGE,
        warn_age: float = DEFAULT_WARN_AGE,
        clock: Callable[[], float] = time.time,
        session_factory: Callable[..., OAuth2Session] = OAuth2Session,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self.store = store
        self.lock = lock
        self.grant_type = grant_type
        self.scopes = list(scopes)
        self._bootstrap = bootstrap_refresh_token or None
        self.conn_id = conn_id
        self.timeout = timeout
        self.margin = margin
        self.keep_alive_age = keep_alive_age
        self.warn_age = warn_age
        self.clock = clock
        self._kept_alive = False
        self._warned = False
        self._session_factory = session_factory
        self._token: Token | None = None
        #: Number of token-endpoint requests this manager made (refreshes and client-credential grants).
        self.refresh_count = 0
        mask_secret(client_secret)
        mask_secret(self._bootstrap)

    def __repr__(self) -> str:
        return f"TokenManager(conn_id={self.conn_id!r}, grant_type={self.grant_type!r}, store={self.store!r})"

    # -- public API -----------------------------------------------------------------------------
    def access_token(self) -> str:
        """Return an access token valid for more than ``margin`` seconds, refreshing only if needed."""
        if self._token is not None and self._is_fresh(self._token):
            return self._token["access_token"]
        stored = self.store.load()
        if stored is not None and not self._bootstrap_pending(stored) and self._is_fresh(stored):
            if self._needs_keep_alive(stored):
                return self._refresh_locked(stale_access_token=None, keep_alive=True)
            return self._use(stored)
        return self._refresh_locked(stale_access_token=None)

    def check_client(self) -> str | None:
        """Check the Client ID and Client Secret at the token endpoint, spending and storing nothing.

        For ``client_credentials`` a token is requested (and not stored); its access token is returned.
        For ``authorization_code`` the endpoint is offered a refresh token that cannot exist: an OAuth2
        server authenticates the client before it looks at the grant, so ``invalid_grant`` proves the
        client id and secret right without spending the real refresh token; ``None`` is returned.

        :raises XeroAuthError: when Xero refuses the client (``invalid_client``) or the scopes.
        """
        if self.grant_type == "client_credentials":
            access = self._fetch_client_credentials().get("access_token")
            mask_secret(access)
            return access
        try:
            self._fetch_refresh(_PROBE_REFRESH_TOKEN)
        except XeroAuthError as exc:
            if exc.title == "invalid_grant":
                return None
            raise
        raise XeroConfigError(
            "identity_url",
            f"{identity_base(self.token_url)} accepted a refresh token that cannot be valid: it is not Xero's "
            "identity server; set it to https://identity.xero.com",
            conn_id=self.conn_id,
        )

    def refresh_token_age(self, token: Token | None = None) -> float | None:
        """Return the age in seconds of the stored refresh token, or ``None`` when unknown."""
        token = token if token is not None else self.store.load()
        issued = (token or {}).get("refresh_token_issued_at")
        if not (token or {}).get("refresh_token") or issued is None:
            return None
        try:
            return self.clock() - float(issued)
        except (TypeError, ValueError):
            return None

    def refresh(self, stale_access_token: str | None = None) -> str:
        """Return a new access token after Xero rejected ``stale_access_token`` as expired.

        If another process already stored a different, fresh access token, that one is returned and no
        refresh token is spent.
        """
        if stale_access_token is None and self._token is not None:
            stale_access_token = self._token.get("access_token")
        self._token = None
        return self._refresh_locked(stale_access_token=stale_access_token)

    def is_fresh(self, token: Token) -> bool:
        """Tell whether ``token`` holds an access token valid for more than ``margin`` seconds."""
        return self._is_fresh(token)

    # -- internals ------------------------------------------------------------------------------
    def _is_fresh(self, token: Token) -> bool:
        try:
            expires_at = float(token.get("expires_at") or 0)
        except (TypeError, ValueError):
            return False
        return bool(token.get("access_token")) and expires_at - self.clock() > self.margin

    def _bootstrap_pending(self, stored: Token | None) -> bool:
        """Tell whether the extra's refresh token is new to the store (first use or a new consent)."""
        if self.grant_type != "authorization_code" or not self._bootstrap:
            return False
        if stored is None or not stored.get("refresh_token"):
            return True
        seen = stored.get("bootstrap_fingerprint")
        return seen is not None and seen != fingerprint(self._bootstrap)

    def _needs_keep_alive_age(self, token: Token) -> bool:
        age = self.refresh_token_age(token)
        return self.keep_alive_age is not None and age is not None and age > self.keep_alive_age

    def _needs_keep_alive(self, token: Token) -> bool:
        """Tell whether ``token``'s refresh token is old enough to rotate now (once per manager)."""
        if self.grant_type != "authorization_code" or self.keep_alive_age is None or self._kept_alive:
            return False
        age = self.refresh_token_age(token)
        return age is not None and age > self.keep_alive_age

    def _warn_if_old(self, token: Token) -> None:
        age = self.refresh_token_age(token)
        if self._warned or age is None or age < self.warn_age:
            return
        self._warned = True
        left = max(REFRESH_TOKEN_LIFETIME - age, 0.0) / 86_400
        log.warning(
            "Xero connection %r: the refresh token is %.0f days old and expires in %.0f days unless used; "
            "run the DAG (it rotates the token) or %s",
            self.conn_id,
            age / 86_400,
            left,
            consent_hint(self.conn_id),
        )

    def _use(self, token: Token) -> str:
        mask_secret(token.get("access_token"))
        mask_secret(token.get("refresh_token"))
        self._warn_if_old(token)
        self._token = token
        return token["access_token"]

    def _refresh_locked(self, stale_access_token: str | None, *, keep_alive: bool = False) -> str:
        with self.lock.hold():
            stored = self.store.load()
            if keep_alive:
                self._kept_alive = True
            rotate = keep_alive and stored is not None and self._is_fresh(stored)
            if rotate:
                assert stored is not None
                if not self._needs_keep_alive_age(stored):
                    log.info(
                        "Xero connection %r: another process already rotated the refresh token", self.conn_id
                    )
                    return self._use(stored)
                log.info(
                    "Xero connection %r: rotating a %.0f-day-old refresh token to keep the grant alive",
                    self.conn_id,
                    (self.refresh_token_age(stored) or 0) / 86_400,
                )
            if not rotate and self._bootstrap_pending(stored):
                assert self._bootstrap is not None
                log.info(
                    "Xero connection %r: importing the refresh token from the connection extra", self.conn_id
                )
                stored = {
                    "refresh_token": self._bootstrap,
                    "bootstrap_fingerprint": fingerprint(self._bootstrap),
                }
            elif (
                not rotate
                and stored is not None
                and self._is_fresh(stored)
                and (stale_access_token is None or stored.get("access_token") != stale_access_token)
            ):
                log.info("Xero connection %r: using the access token another process refreshed", self.conn_id)
                return self._use(stored)
            new = self._request_token(stored)
            self.store.save(new)  # persist the rotated refresh token before anyone uses the access token
            log.info(
                "Xero connection %r: obtained a new access token (expires in %.0f s)",
                self.conn_id,
                float(new["expires_at"]) - self.clock(),
            )
            return self._use(new)

    def _request_token(self, stored: Token | None) -> Token:
        if self.grant_type == "client_credentials":
            raw = self._fetch_client_credentials()
            carry: dict[str, Any] = {}
        else:
            refresh_token = (stored or {}).get("refresh_token")
            if not refresh_token:
                raise XeroAuthError(
                    f"Xero connection {self.conn_id!r} has no refresh token in its token store {self.store!r}: "
                    + consent_hint(self.conn_id)
                )
            raw = self._fetch_refresh(refresh_token)
            carry = {k: stored[k] for k in ("bootstrap_fingerprint",) if stored and k in stored}
        self.refresh_count += 1
        if not raw.get("access_token"):
            raise XeroAuthError(
                f"Xero token endpoint returned no access token for connection {self.conn_id!r}"
            )
        now = self.clock()
        try:
            expires_in = float(raw.get("expires_in") or 1800)
        except (TypeError, ValueError):
            expires_in = 1800.0
        token: Token = {
            "access_token": raw["access_token"],
            "token_type": raw.get("token_type", "Bearer"),
            "expires_in": expires_in,
            "expires_at": now + expires_in,
            "obtained_at": now,
            **carry,
        }
        if raw.get("refresh_token"):
            token["refresh_token"] = raw["refresh_token"]
            if stored and raw["refresh_token"] == stored.get("refresh_token"):
                token["refresh_token_issued_at"] = stored.get("refresh_token_issued_at")
            else:
                token["refresh_token_issued_at"] = now
        if raw.get("scope"):
            scope = raw["scope"]
            token["scope"] = " ".join(scope) if isinstance(scope, list | tuple) else str(scope)
        mask_secret(token["access_token"])
        mask_secret(token.get("refresh_token"))
        return token

    def _session(self, **kwargs: Any) -> OAuth2Session:
        session = self._session_factory(**kwargs)
        check = functools.partial(_check_token_response, conn_id=self.conn_id)
        session.register_compliance_hook("access_token_response", check)
        session.register_compliance_hook("refresh_token_response", check)
        return session

    def _unreachable(self, exc: requests.ConnectionError) -> BaseException:
        """Return the error naming ``identity_url`` when the token endpoint could not be reached."""
        error = unreachable(
            exc, field="identity_url", url=identity_base(self.token_url), conn_id=self.conn_id
        )
        return error if error is not None else exc

    def _fetch_refresh(self, refresh_token: str) -> Token:
        session = self._session(client_id=self.client_id)
        try:
            with _allow_loopback_http(self.token_url):
                return dict(
                    session.refresh_token(
                        self.token_url,
                        refresh_token=refresh_token,
                        auth=HTTPBasicAuth(self.client_id, self._client_secret),
                        timeout=self.timeout,
                    )
                )
        except OAuth2Error as exc:
            raise self._auth_error(exc) from None
        except requests.ConnectionError as exc:
            error = self._unreachable(exc)
            if error is exc:
                raise
            raise error from None
        except Warning as exc:  # oauthlib signals a changed scope with a Warning
            raise XeroAuthError(f"Xero token endpoint: {exc}") from None

    def _fetch_client_credentials(self) -> Token:
        session = self._session(client=BackendApplicationClient(client_id=self.client_id))
        try:
            with _allow_loopback_http(self.token_url):
                return dict(
                    session.fetch_token(
                        self.token_url,
                        auth=HTTPBasicAuth(self.client_id, self._client_secret),
                        scope=" ".join(self.scopes) or None,
                        timeout=self.timeout,
                    )
                )
        except OAuth2Error as exc:
            raise self._auth_error(exc) from None
        except requests.ConnectionError as exc:
            error = self._unreachable(exc)
            if error is exc:
                raise
            raise error from None
        except Warning as exc:
            raise XeroAuthError(f"Xero token endpoint: {exc}") from None

    def _auth_error(self, exc: OAuth2Error) -> XeroAuthError:
        code = getattr(exc, "error", None) or type(exc).__name__
        where = f"Xero connection {self.conn_id!r}"
        if code == "invalid_grant":
            return XeroAuthError(
                f"{where}: Xero rejected the refresh token (invalid_grant: it was already used, revoked, or "
                f"unused for 60 days); {consent_hint(self.conn_id)}",
                status=400,
                title="invalid_grant",
            )
        if code == "invalid_client":
            return XeroAuthError(
                f"{where}: Xero rejected the Client ID or Client Secret (invalid_client): check the "
                "connection's login (Client ID) and password (Client Secret) against the app at "
                "developer.xero.com",
                status=400,
                title=code,
            )
        if code in ("invalid_scope", "unauthorized_client"):
            return XeroAuthError(
                f"{where}: Xero refused the requested scopes or grant ({code}); requested "
                f"{' '.join(self.scopes) or '(none)'}: add the missing scopes to the app, or fix the "
                "connection's 'scopes' extra (apps created since March 2026 need 'granular', older ones "
                "'broad'), then " + consent_hint(self.conn_id),
                status=400,
                title=code,
            )
        return XeroAuthError(f"{where}: Xero token endpoint error {code!r}", title=str(code))


def build_authorization_url(
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    authorize_url: str = "https://login.xero.com/identity/connect/authorize",
    state: str | None = None,
) -> tuple[str, str]:
    """Return ``(url, state)`` of the consent page the user opens once to connect the app."""
    session = OAuth2Session(client_id=client_id, redirect_uri=redirect_uri, scope=list(scopes), state=state)
    with _allow_loopback_http(authorize_url):
        url, new_state = session.authorization_url(authorize_url)
    return url, new_state


def exchange_code(
    *,
    client_id: str,
    client_secret: str,
    token_url: str,
    redirect_uri: str,
    code: str,
    store: TokenStore,
    clock: Callable[[], float] = time.time,
    timeout: float = 60.0,
) -> None:
    """Trade the consent step's authorization code for tokens and save them in ``store``."""
    session = OAuth2Session(client_id=client_id, redirect_uri=redirect_uri)
    session.register_compliance_hook("access_token_response", _check_token_response)
    try:
        with _allow_loopback_http(token_url):
            raw = session.fetch_token(
                token_url, code=code, auth=HTTPBasicAuth(client_id, client_secret), timeout=timeout
            )
    except OAuth2Error as exc:
        raise XeroAuthError(f"Xero refused the authorization code ({getattr(exc, 'error', exc)})") from None
    now = clock()
    expires_in = float(raw.get("expires_in") or 1800)
    store.save(
        {
            "access_token": raw["access_token"],
            "refresh_token": raw.get("refresh_token"),
            "token_type": raw.get("token_type", "Bearer"),
            "expires_in": expires_in,
            "expires_at": now + expires_in,
            "obtained_at": now,
            "refresh_token_issued_at": now if raw.get("refresh_token") else None,
            "scope": " ".join(raw["scope"]) if isinstance(raw.get("scope"), list) else raw.get("scope"),
        }
    )
    mask_secret(raw.get("access_token"))
    mask_secret(raw.get("refresh_token"))
