"""Where OAuth2 tokens are kept between tasks, and the lock that serialises their refresh.

A token is a plain dict: ``access_token``, ``refresh_token``, ``expires_at`` (Unix seconds) and a
few bookkeeping keys. Two stores implement the :class:`TokenStore` protocol:

* :class:`VariableTokenStore`: an Airflow Variable holding the token as JSON (the default, shared by
  every worker that reaches the API server);
* :class:`FileTokenStore`: a JSON file written atomically (temporary file, ``fsync``, ``os.replace``)
  with mode 0600.

Refreshes run under a :class:`TokenLock`, chosen by the connection's ``refresh_lock`` extra
(:func:`build_token_lock`):

* :class:`FileLock` (default, ``file``): an exclusive ``fcntl`` lock on a lock file. It serialises
  processes on **one host** only.
* :class:`PostgresAdvisoryLock` (``postgres:<conn_id>``): a session-level ``pg_advisory_lock`` in a
  PostgreSQL database every worker reaches (typically the Airflow metadata database or the warehouse).
  This is the recommended cross-host lock: Airflow deployments already run PostgreSQL, the lock is
  released by the server when the holder's session ends (a killed worker cannot leave it stuck) and it
  needs no extra service.
* :class:`RedisLock` (``redis://host:port/db``): a ``redis-py`` lock with an expiry, for deployments
  that run Redis (e.g. the Celery broker) but would rather not touch a database.

Several workers on different hosts must share both the store (a Variable does) and the lock.

Neither stores nor locks ever log or repr a token.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from xero.exceptions import XeroAuthError, XeroConfigError, XeroTokenLockError

Token = dict[str, Any]


def consent_hint(conn_id: str) -> str:
    """Return what to do when the grant of ``conn_id`` is lost: the exact consent command."""
    return f"re-run the consent step: python -m xero auth --conn-id {conn_id}"


def _lost_grant(what: str, problem: str, conn_id: str | None) -> XeroAuthError:
    """Return the error of a store that cannot be read: its grant is lost, a new consent replaces it."""
    command = (
        consent_hint(conn_id) if conn_id else "re-run the consent step (python -m xero auth --conn-id <id>)"
    )
    where = f"Xero connection {conn_id!r}: " if conn_id else ""
    return XeroAuthError(
        f"{where}{what} {problem}, so the grant it held is lost and a new consent is needed: {command} "
        "(it replaces the stored token)"
    )


@runtime_checkable
class TokenStore(Protocol):
    """Persist one token set."""

    def load(self) -> Token | None:
        """Return the stored token, or ``None`` when nothing is stored yet."""
        ...

    def save(self, token: Token) -> None:
        """Persist ``token`` durably before returning."""
        ...


@runtime_checkable
class TokenLock(Protocol):
    """An exclusive lock held while a token is refreshed."""

    def hold(self) -> AbstractContextManager[None]:
        """Return a context manager that holds the lock while entered."""
        ...


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


class VariableTokenStore:
    """Keep the token as JSON in an Airflow Variable.

    :param key: Variable key, e.g. ``xero_token__xero_default``.
    :param conn_id: the Xero connection whose token this is (named in errors).
    :param getter: reads a Variable (``airflow.sdk.Variable.get`` by default; injectable for tests).
    :param setter: writes a Variable (``airflow.sdk.Variable.set`` by default).
    """

    def __init__(
        self,
        key: str,
        *,
        conn_id: str | None = None,
        getter: Callable[..., Any] | None = None,
        setter: Callable[..., Any] | None = None,
    ) -> None:
        self.key = key
        self.conn_id = conn_id
        self._getter = getter
        self._setter = setter

    def __repr__(self) -> str:
        return f"VariableTokenStore(key={self.key!r})"

    def load(self) -> Token | None:
        """Return the token stored in the Variable, bypassing the worker's secrets cache."""
        if self._getter is None:
            from airflow.sdk import Variable

            with contextlib.suppress(Exception):  # another process may have rotated the token
                from airflow.sdk.execution_time.cache import SecretCache

                SecretCache.invalidate_variable(self.key)
            raw = Variable.get(self.key, default=None)
        else:
            raw = self._getter(self.key, default=None)
        if raw is None or raw == "":
            return None
        if isinstance(raw, dict):
            return dict(raw)
        try:
            token = json.loads(raw)
        except ValueError:
            raise _lost_grant(
                f"the token Variable {self.key!r}", "does not hold JSON", self.conn_id
            ) from None
        if not isinstance(token, dict):
            raise _lost_grant(f"the token Variable {self.key!r}", "does not hold a JSON object", self.conn_id)
        return token

    def save(self, token: Token) -> None:
        """Write ``token`` to the Variable."""
        value = json.dumps(token, sort_keys=True)
        if self._setter is None:
            from airflow.sdk import Variable

            Variable.set(self.key, value, description="Xero OAuth2 token (managed by the Xero hook)")
        else:
            self._setter(self.key, value)


class FileTokenStore:
    """Keep the token in a JSON file, replaced atomically and readable by its owner only.

    :param path: the token file.
    :param conn_id: the Xero connection whose token this is (named in errors).
    """

    def __init__(self, path: str | os.PathLike[str], *, conn_id: str | None = None) -> None:
        self.path = Path(path)
        self.conn_id = conn_id

    def __repr__(self) -> str:
        return f"FileTokenStore(path={str(self.path)!r})"

    def load(self) -> Token | None:
        """Return the token in the file, or ``None`` when the file does not exist or is empty."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            token = json.loads(text)
        except ValueError:
            raise _lost_grant(
                f"the token file {str(self.path)!r}", "is not valid JSON", self.conn_id
            ) from None
        if not isinstance(token, dict):
            raise _lost_grant(
                f"the token file {str(self.path)!r}", "does not hold a JSON object", self.conn_id
            )
        return token

    def save(self, token: Token) -> None:
        """Write ``token`` to a temporary file in the same directory, ``fsync`` it and rename it over."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(token, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class FileLock:
    """An exclusive ``fcntl.flock`` on a lock file: serialises token refreshes between processes on a host.

    :param path: the lock file (created with mode 0600; its content is irrelevant).
    :param timeout: seconds to wait for the lock before giving up.
    :param poll: seconds between attempts while waiting.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 120.0, poll: float = 0.05) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.poll = poll

    def __repr__(self) -> str:
        return f"FileLock(path={str(self.path)!r})"

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the duration of the ``with`` block."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise XeroTokenLockError(
                            f"timed out after {self.timeout:.0f}s waiting for the token lock {str(self.path)!r}"
                        ) from None
                    time.sleep(self.poll)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def lock_key(name: str) -> int:
    """Return the signed 64-bit advisory-lock key of ``name`` (stable across processes and hosts)."""
    digest = hashlib.sha256(f"airflow-xero-token:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresAdvisoryLock:
    """A PostgreSQL session-level advisory lock: serialises token refreshes across hosts.

    The lock lives in its own short connection; PostgreSQL releases it if the holder dies.

    :param dsn: a libpq URL or ``key=value`` string of a database every worker reaches.
    :param name: what is locked (the token store), hashed into a 64-bit key.
    :param timeout: seconds to wait for the lock before giving up.
    :param poll: seconds between attempts while waiting.
    """

    def __init__(self, dsn: str, name: str, *, timeout: float = 120.0, poll: float = 0.05) -> None:
        self._dsn = dsn
        self.name = name
        self.key = lock_key(name)
        self.timeout = timeout
        self.poll = poll

    def __repr__(self) -> str:
        return f"PostgresAdvisoryLock(name={self.name!r})"

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the advisory lock for the duration of the ``with`` block."""
        import psycopg

        try:
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise XeroTokenLockError(
                f"cannot reach the PostgreSQL database of the token lock {self.name!r}: {type(exc).__name__}"
            ) from None
        with conn:
            deadline = time.monotonic() + self.timeout
            while True:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                if row and row[0]:
                    break
                if time.monotonic() >= deadline:
                    raise XeroTokenLockError(
                        f"timed out after {self.timeout:.0f}s waiting for the token lock {self.name!r}"
                    )
                time.sleep(self.poll)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))


class RedisLock:
    """A Redis lock (``redis-py``) with an expiry: serialises token refreshes across hosts.

    :param url: ``redis://host:port/db`` (or ``rediss://``).
    :param name: what is locked (the token store).
    :param timeout: seconds to wait for the lock before giving up.
    :param expiry: seconds after which Redis drops a lock whose holder died.
    """

    def __init__(self, url: str, name: str, *, timeout: float = 120.0, expiry: float = 300.0) -> None:
        self._url = url
        self.name = name
        self.timeout = timeout
        self.expiry = expiry

    def __repr__(self) -> str:
        return f"RedisLock(name={self.name!r})"

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the Redis lock for the duration of the ``with`` block."""
        import redis

        client = redis.Redis.from_url(self._url, socket_timeout=30)
        lock = client.lock(
            f"airflow-xero-token-lock:{self.name}",
            timeout=self.expiry,
            blocking_timeout=self.timeout,
            sleep=0.05,
        )
        try:
            acquired = lock.acquire()
        except redis.RedisError as exc:
            client.close()
            raise XeroTokenLockError(
                f"cannot reach the Redis server of the token lock {self.name!r}: {type(exc).__name__}"
            ) from None
        if not acquired:
            client.close()
            raise XeroTokenLockError(
                f"timed out after {self.timeout:.0f}s waiting for the token lock {self.name!r}"
            )
        try:
            yield
        finally:
            with contextlib.suppress(redis.RedisError):
                lock.release()
            client.close()


def _postgres_dsn(conn_id: str) -> str:
    """Return the libpq URL of Airflow connection ``conn_id``."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    host = conn.host or "localhost"
    port = f":{conn.port}" if conn.port else ""
    user = quote(conn.login or "", safe="")
    password = f":{quote(conn.password, safe='')}" if conn.password else ""
    auth = f"{user}{password}@" if user or password else ""
    return f"postgresql://{auth}{host}{port}/{quote(conn.schema or '', safe='')}"


def build_token_lock(spec: str | None, name: str, default: TokenLock) -> TokenLock:
    """Build the refresh lock from the connection's ``refresh_lock`` extra.

    :param spec: ``file`` or empty (``default``, a host-local :class:`FileLock`), ``postgres:<conn_id>``
        (:class:`PostgresAdvisoryLock` in that Airflow connection's database), or a ``redis://`` URL.
    :param name: what is locked (the token store's identity).
    :param default: the host-local lock of the token store.
    """
    spec = (spec or "").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind in ("", "file"):
        return default
    if kind in ("postgres", "postgresql") and arg and not arg.startswith("//"):
        conn_id = arg.strip()
        return _LazyLock(lambda: PostgresAdvisoryLock(_postgres_dsn(conn_id), name), f"postgres:{conn_id}")
    if kind in ("postgres", "postgresql") and arg.startswith("//"):
        return PostgresAdvisoryLock(spec, name)
    if kind in ("redis", "rediss") and arg.startswith("//"):
        return RedisLock(spec, name)
    raise XeroConfigError(
        "refresh_lock",
        f"use 'file', 'postgres:<conn_id>' or 'redis://host:port/db', got {spec.split('@')[-1]!r}",
    )


class _LazyLock:
    """A lock built on first use (resolving an Airflow connection only when a refresh needs it)."""

    def __init__(self, factory: Callable[[], TokenLock], label: str) -> None:
        self._factory = factory
        self._lock: TokenLock | None = None
        self.label = label

    def __repr__(self) -> str:
        return f"TokenLock({self.label!r})"

    def hold(self) -> AbstractContextManager[None]:
        """Return the underlying lock's context manager, building the lock first if needed."""
        if self._lock is None:
            self._lock = self._factory()
        return self._lock.hold()


def default_variable_key(conn_id: str) -> str:
    """Return the Variable key that holds the token of connection ``conn_id``."""
    return f"xero_token__{conn_id}"


def build_token_store(
    spec: str, conn_id: str, *, lock_dir: str | None = None
) -> tuple[TokenStore, TokenLock]:
    """Build the store and its refresh lock from the connection's ``oauth_store`` extra.

    :param spec: ``variable`` (key ``xero_token__<conn_id>``), ``variable:<key>`` or ``file:<path>``.
    :param conn_id: the Xero connection id.
    :param lock_dir: directory of the lock file of a Variable store (the system temp dir by default).
    """
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind == "variable":
        key = arg or default_variable_key(conn_id)
        lock_path = Path(lock_dir or tempfile.gettempdir()) / f"airflow-xero-{_safe_name(key)}.lock"
        return VariableTokenStore(key, conn_id=conn_id), FileLock(lock_path)
    if kind == "file":
        if not arg:
            raise XeroConfigError(
                "oauth_store", "'file:' needs a path, e.g. 'file:/var/lib/airflow/xero.json'"
            )
        path = Path(arg).expanduser()
        if not path.is_absolute():
            raise XeroConfigError("oauth_store", f"file path must be absolute, got {arg!r}")
        return FileTokenStore(path, conn_id=conn_id), FileLock(path.with_name(path.name + ".lock"))
    raise XeroConfigError("oauth_store", f"use 'variable', 'variable:<key>' or 'file:<path>', got {spec!r}")
