"""The Airflow hook of the Xero connection type: configuration, wiring and the public API of the DAG.

:class:`XeroHook` reads the ``xero`` connection (login = client id, password = client secret, extras
parsed by the pure :func:`parse_connection_config`), builds the token manager (:mod:`xero.auth`) and
the HTTP client (:mod:`xero.client`) lazily, and exposes what the pipeline needs: tenants, pages of an
entity, API calls spent per tenant and a connection test.

Connection extras (all optional):

``tenant_ids``      list or comma-separated string; empty = every tenant from ``GET /connections``
``grant_type``      ``authorization_code`` (default) or ``client_credentials``
``scopes``          ``granular`` (default), ``broad`` or an explicit list of scopes
``refresh_token``   bootstrap refresh token from the consent step (copied into an empty token store)
``api_url``         default ``https://api.xero.com``
``identity_url``    default ``https://identity.xero.com`` (token endpoint ``<identity_url>/connect/token``)
``authorize_url``   default ``https://login.xero.com/identity/connect/authorize``
``oauth_store``     ``variable`` (default), ``variable:<key>`` or ``file:/path/to/tokens.json``
``refresh_lock``    lock held while refreshing: ``file`` (default, one host), ``postgres:<conn_id>``
                    (advisory lock, recommended across hosts) or ``redis://host:port/db``
``timeout``         seconds per request (default 60)
``page_size``       records per page, 1-1000 (default 1000)

``token_store`` and ``token_lock`` are deprecated names of ``oauth_store`` and ``refresh_lock`` (the
Airflow UI masks fields named like a token, see :mod:`xero.connection_form`); they still work. An empty
value means the default. A value of ``***`` (Airflow's mask of a secret, saved by mistake) is rejected
with a message naming the field.
"""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from xero.auth import AccessTokenProvider, GrantType, TokenManager, is_loopback, mask_secret
from xero.client import Page, Tenant, XeroClient, build_retrying
from xero.connection_form import CONN_FIELDS, DEPRECATED_EXTRAS, MASK, UI_FIELD_BEHAVIOUR
from xero.entities import ENTITIES, MAX_PAGE_SIZE, Entity
from xero.exceptions import XeroConfigError
from xero.governor import Governor
from xero.scopes import FAMILIES, ScopeFamily, requested_scopes
from xero.tokens import TokenLock, TokenStore, build_token_lock, build_token_store

DEFAULT_API_URL = "https://api.xero.com"
DEFAULT_IDENTITY_URL = "https://identity.xero.com"
DEFAULT_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
DEFAULT_TIMEOUT = 60.0
GRANT_TYPES: tuple[GrantType, ...] = ("authorization_code", "client_credentials")
KNOWN_EXTRAS = frozenset(CONN_FIELDS) | frozenset(DEPRECATED_EXTRAS)

__all__ = ["Page", "Tenant", "XeroConnectionConfig", "XeroHook", "parse_connection_config"]


@dataclass(frozen=True)
class XeroConnectionConfig:
    """A Xero connection, validated. Secrets are left out of the repr."""

    conn_id: str
    client_id: str
    client_secret: str = field(repr=False)
    tenant_ids: tuple[str, ...] = ()
    grant_type: GrantType = "authorization_code"
    scopes: ScopeFamily | tuple[str, ...] = "granular"
    refresh_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    identity_url: str = DEFAULT_IDENTITY_URL
    authorize_url: str = DEFAULT_AUTHORIZE_URL
    token_store: str = "variable"
    token_lock: str = "file"
    timeout: float = DEFAULT_TIMEOUT
    page_size: int = MAX_PAGE_SIZE
    deprecated_extras: tuple[str, ...] = ()

    @property
    def token_url(self) -> str:
        """Return the token endpoint."""
        return f"{self.identity_url}/connect/token"

    def requested_scopes(self, entities: Sequence[Entity] | None = None) -> list[str]:
        """Return the scopes to request for ``entities`` (all known entities by default)."""
        return requested_scopes(
            self.scopes if isinstance(self.scopes, str) else list(self.scopes),
            entities if entities is not None else list(ENTITIES.values()),
            offline_access=self.grant_type == "authorization_code",
        )


def _url(extra: Mapping[str, Any], name: str, default: str) -> str:
    value = extra.get(name)
    if value in (None, ""):
        return default
    if not isinstance(value, str):
        raise XeroConfigError(name, f"expected a URL string, got {type(value).__name__}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise XeroConfigError(name, f"expected an http(s) URL such as {default!r}, got {value!r}")
    if parts.scheme == "http" and not is_loopback(value):
        raise XeroConfigError(name, f"must use https (plain http only for a local sandbox), got {value!r}")
    return value.strip().rstrip("/")


def _string_list(name: str, value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        items = [part.strip() for part in value.replace(",", " ").split()]
    elif isinstance(value, list | tuple):
        items = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise XeroConfigError(name, f"every entry must be a non-empty string, got {item!r}")
            items.append(item.strip())
    else:
        raise XeroConfigError(
            name, f"expected a list or a comma-separated string, got {type(value).__name__}"
        )
    return tuple(dict.fromkeys(items))


def _number(
    extra: Mapping[str, Any], name: str, default: float, *, integer: bool, low: float, high: float
) -> Any:
    value = extra.get(name)
    if value in (None, ""):
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise XeroConfigError(name, f"expected {kind}, got {value!r}") from None
    if not low <= number <= high:
        raise XeroConfigError(name, f"must be between {low:g} and {high:g}, got {value!r}")
    return number


def _resolve_deprecated(extra: dict[str, Any]) -> tuple[str, ...]:
    """Move values of deprecated extras to their current names (in place); return the deprecated names used."""
    used = []
    for old, new in DEPRECATED_EXTRAS.items():
        if old not in extra:
            continue
        value = extra.pop(old)
        if value in (None, ""):
            continue
        used.append(old)
        current = extra.get(new)
        if current not in (None, "") and current != value:
            raise XeroConfigError(
                old, f"deprecated name of {new!r}, which is also set to another value: keep only {new!r}"
            )
        extra[new] = value
    return tuple(used)


def parse_connection_config(
    conn_id: str, login: str | None, password: str | None, extra: Mapping[str, Any] | None
) -> XeroConnectionConfig:
    """Validate a Xero connection; raise :class:`XeroConfigError` naming the connection and the first bad field.

    Pure: ``extra`` is copied, never changed.

    :param conn_id: the connection id.
    :param login: the app's client id.
    :param password: the app's client secret.
    :param extra: the connection's extras (``extra_dejson``).
    """
    try:
        return _parse(conn_id, login, password, extra)
    except XeroConfigError as exc:
        if exc.conn_id is not None:
            raise
        given = dict(extra or {})
        renamed = {
            new: old for old, new in DEPRECATED_EXTRAS.items() if given.get(old) and not given.get(new)
        }
        raise XeroConfigError(renamed.get(exc.field, exc.field), exc.problem, conn_id=conn_id) from None


def _parse(
    conn_id: str, login: str | None, password: str | None, extra: Mapping[str, Any] | None
) -> XeroConnectionConfig:
    extra = copy.deepcopy(dict(extra or {}))
    unknown = sorted(set(extra) - KNOWN_EXTRAS)
    if unknown:
        raise XeroConfigError(unknown[0], f"unknown extra; known extras: {', '.join(sorted(CONN_FIELDS))}")
    for name, value in (("password", password), *extra.items()):
        if isinstance(value, str) and value.strip() == MASK:
            raise XeroConfigError(
                name,
                f"holds {MASK!r}, the mask Airflow shows in place of a secret, not a value: enter the real "
                "value, or clear the field to use the default",
            )
    deprecated = _resolve_deprecated(extra)
    if not login or not str(login).strip():
        raise XeroConfigError("login", "the Client ID of the Xero app is required")
    if not password:
        raise XeroConfigError("password", "the Client Secret of the Xero app is required")

    grant_type = extra.get("grant_type") or "authorization_code"
    if grant_type not in GRANT_TYPES:
        raise XeroConfigError("grant_type", f"use one of {', '.join(GRANT_TYPES)}, got {grant_type!r}")

    raw_scopes = extra.get("scopes") or "granular"
    scopes: ScopeFamily | tuple[str, ...]
    if isinstance(raw_scopes, str) and raw_scopes.strip() in FAMILIES:
        scopes = raw_scopes.strip()  # type: ignore[assignment]
    else:
        scopes = _string_list("scopes", raw_scopes)
        if not scopes:
            raise XeroConfigError("scopes", "use 'granular', 'broad' or a list of scopes")

    refresh_token = extra.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        raise XeroConfigError("refresh_token", "expected a string")

    token_store = extra.get("oauth_store") or "variable"
    if not isinstance(token_store, str):
        raise XeroConfigError("oauth_store", "expected 'variable', 'variable:<key>' or 'file:<path>'")
    store, file_lock = build_token_store(token_store, conn_id)  # validates the spec; builds nothing durable
    token_lock = extra.get("refresh_lock") or "file"
    if not isinstance(token_lock, str):
        raise XeroConfigError(
            "refresh_lock", "expected 'file', 'postgres:<conn_id>' or 'redis://host:port/db'"
        )
    build_token_lock(token_lock, repr(store), file_lock)  # validates the spec; connects to nothing

    return XeroConnectionConfig(
        conn_id=conn_id,
        client_id=str(login).strip(),
        client_secret=str(password),
        tenant_ids=_string_list("tenant_ids", extra.get("tenant_ids")),
        grant_type=grant_type,
        scopes=scopes,
        refresh_token=refresh_token.strip() if refresh_token else None,
        api_url=_url(extra, "api_url", DEFAULT_API_URL),
        identity_url=_url(extra, "identity_url", DEFAULT_IDENTITY_URL),
        authorize_url=_url(extra, "authorize_url", DEFAULT_AUTHORIZE_URL),
        token_store=token_store.strip(),
        token_lock=token_lock.strip(),
        timeout=_number(extra, "timeout", DEFAULT_TIMEOUT, integer=False, low=1, high=600),
        page_size=_number(extra, "page_size", MAX_PAGE_SIZE, integer=True, low=1, high=MAX_PAGE_SIZE),
        deprecated_extras=deprecated,
    )


class XeroHook(BaseHook):
    """Read Xero accounting data for the tenants of one ``xero`` connection.

    Nothing is read or requested until a method needs it.

    :param xero_conn_id: the connection id.
    :param entities: the entities this hook reads (for the client-credentials scopes and error hints).
    :param sleep: how to wait between retries and rate-limit windows (injectable for tests).
    :param clock: returns Unix seconds (injectable for tests).
    :param retry_wait: tenacity backoff for retries (``tenacity.wait_none()`` in tests).
    :param token_store: overrides the store built from the ``token_store`` extra.
    :param token_lock: overrides the refresh lock (e.g. a cross-host lock).
    :param governor_dir: directory where the rate-limit governor shares its state with the host's other
        processes (default: ``XERO_GOVERNOR_DIR``, else this process only; see :mod:`xero.governor`).
    """

    conn_name_attr = "xero_conn_id"
    default_conn_name = "xero_default"
    conn_type = "xero"
    hook_name = "Xero"

    def __init__(
        self,
        xero_conn_id: str = default_conn_name,
        *,
        entities: Sequence[Entity] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        retry_wait: Any = None,
        token_store: TokenStore | None = None,
        token_lock: TokenLock | None = None,
        governor_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._governor_dir = governor_dir
        self.xero_conn_id = xero_conn_id
        self.entities = list(entities) if entities is not None else list(ENTITIES.values())
        self._sleep = sleep
        self._clock = clock
        self._retry_wait = retry_wait
        self._token_store = token_store
        self._token_lock = token_lock

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hide the unused fields and relabel the rest for the Xero connection form."""
        return copy.deepcopy(UI_FIELD_BEHAVIOUR)

    @cached_property
    def config(self) -> XeroConnectionConfig:
        """Return the parsed connection (read once).

        :raises XeroConfigError: when the connection does not exist or a field is wrong.
        """
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.xero_conn_id)
        except AirflowNotFoundException:
            raise XeroConfigError(
                "conn_id",
                "no Airflow connection has this id: create it (type Xero) or point XERO_CONN_ID at another",
                conn_id=self.xero_conn_id,
            ) from None
        config = parse_connection_config(self.xero_conn_id, conn.login, conn.password, conn.extra_dejson)
        mask_secret(config.client_secret)
        mask_secret(config.refresh_token)
        for old in config.deprecated_extras:
            self.log.warning(
                "Xero connection %r: the extra %r is deprecated, rename it to %r",
                self.xero_conn_id,
                old,
                DEPRECATED_EXTRAS[old],
            )
        return config

    @cached_property
    def token_manager(self) -> TokenManager:
        """Return the token manager of this connection."""
        config = self.config
        store, file_lock = build_token_store(config.token_store, config.conn_id)
        lock = build_token_lock(config.token_lock, repr(store), file_lock)
        kwargs: dict[str, Any] = {}
        if self._clock is not None:
            kwargs["clock"] = self._clock
        return TokenManager(
            client_id=config.client_id,
            client_secret=config.client_secret,
            token_url=config.token_url,
            store=self._token_store or store,
            lock=self._token_lock or lock,
            grant_type=config.grant_type,
            scopes=config.requested_scopes(self.entities),
            bootstrap_refresh_token=config.refresh_token,
            conn_id=config.conn_id,
            timeout=config.timeout,
            **kwargs,
        )

    def get_conn(self) -> XeroClient:
        """Return the HTTP client of this connection (built once)."""
        return self.client

    @cached_property
    def client(self) -> XeroClient:
        """Return the HTTP client of this connection."""
        return self.make_client(self.token_manager)

    def make_client(self, tokens: AccessTokenProvider) -> XeroClient:
        """Return a new HTTP client of this connection that takes its access tokens from ``tokens``."""
        config = self.config
        retry_kwargs: dict[str, Any] = {}
        client_kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            retry_kwargs["sleep"] = self._sleep
            client_kwargs["sleep"] = self._sleep
        if self._retry_wait is not None:
            retry_kwargs["wait"] = self._retry_wait
        if self._clock is not None:
            client_kwargs["clock"] = self._clock
        if self._governor_dir is not None:
            client_kwargs["governor"] = Governor(
                clock=self._clock or time.time, sleep=self._sleep or time.sleep, state_dir=self._governor_dir
            )
        return XeroClient(
            api_url=config.api_url,
            tokens=tokens,
            timeout=config.timeout,
            page_size=config.page_size,
            scopes=config.scopes if isinstance(config.scopes, str) else list(config.scopes),
            retrying=build_retrying(**retry_kwargs),
            conn_id=config.conn_id,
            **client_kwargs,
        )

    @property
    def calls(self) -> Counter[str]:
        """Return the API calls sent so far, per tenant id."""
        if "client" not in self.__dict__:
            return Counter()
        return self.client.calls

    def list_tenants(self, *, resolve_names: bool = False) -> list[Tenant]:
        """Return the tenants to sync.

        Configured ``tenant_ids`` are returned without any API call (names unknown) unless
        ``resolve_names`` asks for them, in which case ``GET /connections`` supplies the names and an
        id the app is not connected to raises. Without configured ids, every connected tenant.
        """
        configured = self.config.tenant_ids
        if configured and not resolve_names:
            return [Tenant(tenant_id) for tenant_id in configured]
        connected = self.client.list_tenants()
        if not configured:
            return connected
        by_id = {tenant.tenant_id: tenant for tenant in connected}
        missing = [tenant_id for tenant_id in configured if tenant_id not in by_id]
        if missing:
            raise XeroConfigError(
                "tenant_ids", f"not connected to this app: {', '.join(missing)} (re-run the consent step)"
            )
        return [by_id[tenant_id] for tenant_id in configured]

    def iter_pages(self, tenant_id: str, entity: Entity, modified_since: datetime | None) -> Iterator[Page]:
        """Yield the pages of ``entity`` changed since ``modified_since`` for ``tenant_id``.

        See :meth:`xero.client.XeroClient.iter_pages`; no record is lost when data changes mid-paging.
        """
        return self.client.iter_pages(tenant_id, entity, modified_since)

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection without spending or storing a token (see :mod:`xero.connection_test`)."""
        from xero.connection_test import test_connection

        return test_connection(self)
