"""Eight real processes ask for a token at once and the refresh token is spent exactly once.

The sandbox runs with no refresh grace, so a refresh token used twice is refused (``invalid_grant``) and a
double spend would fail a process. Each lock is selected through the connection's ``refresh_lock`` extra:
the host-local file lock (default), a PostgreSQL advisory lock (``postgres:<conn_id>``) and a Redis lock.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.auth.workers import ask_for_token, preload
from xero.exceptions import XeroConfigError
from xero.hooks import XeroHook, parse_connection_config
from xero.tokens import FileLock, FileTokenStore, PostgresAdvisoryLock, RedisLock, build_token_lock

PROCESSES = 8
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def pool() -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    """Start ``PROCESSES`` spawned worker processes (and a barrier manager) once for this module."""
    context = multiprocessing.get_context("spawn")
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(PROCESSES, mp_context=context, initializer=preload) as executor,
    ):
        yield executor, manager


def race(pool: tuple[ProcessPoolExecutor, Any], conn_id: str, mode: str) -> list[tuple[str, str, int]]:
    """Run :func:`ask_for_token` in ``PROCESSES`` processes released together by a barrier."""
    executor, manager = pool
    barrier = manager.Barrier(PROCESSES)
    env = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW_CONN_")}
    futures = [executor.submit(ask_for_token, env, conn_id, mode, barrier) for _ in range(PROCESSES)]
    return [future.result(timeout=120) for future in futures]


def token_requests(sb) -> list[Any]:
    return [r for r in sb.requests if r.path.endswith("/connect/token")]


def assert_spent_once(sb, results: list[tuple[str, str, int]]) -> None:
    assert [r[0] for r in results] == ["ok"] * PROCESSES, results
    assert len({r[1] for r in results}) == 1, "every process must use the same access token"
    assert sum(r[2] for r in results) == 1, "exactly one process refreshes"
    calls = token_requests(sb)
    assert [c.status for c in calls] == [200]


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres), "redis"])
def token_lock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return the ``token_lock`` extra of one lock kind (its server must be reachable)."""
    if request.param == "file":
        return "file"
    if request.param == "postgres":
        monkeypatch.setenv("AIRFLOW_CONN_XERO_LOCK_DB", request.getfixturevalue("postgres_url"))
        return "postgres:xero_lock_db"
    if not redis_available():
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return REDIS_URL


def test_the_sandbox_refuses_a_spent_refresh_token(sb) -> None:
    """The premise: with no grace, spending a refresh token twice fails, so a double spend is visible."""
    refresh_token = sb.issue_refresh_token()
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    auth = (sb.config.client_id, sb.config.client_secret)
    assert requests.post(f"{sb.url}/connect/token", data=form, auth=auth, timeout=10).status_code == 200
    second = requests.post(f"{sb.url}/connect/token", data=form, auth=auth, timeout=10)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"


def test_eight_processes_bootstrap_with_one_refresh(sb, set_connection, token_lock: str, pool) -> None:
    set_connection("xero_race", refresh_token=sb.issue_refresh_token(), refresh_lock=token_lock)
    sb.reset_requests()
    assert_spent_once(sb, race(pool, "xero_race", "token"))


def test_eight_processes_race_an_access_token_expiring_at_xero(
    sb, set_connection, token_lock: str, tmp_path: Path, pool
) -> None:
    set_connection("xero_race", refresh_token=sb.issue_refresh_token(), refresh_lock=token_lock)
    XeroHook("xero_race").token_manager.access_token()
    stored = FileTokenStore(tmp_path / "xero_race.json").load()
    sb.auth.expire(stored["access_token"])  # still valid by our clock, but Xero now answers TokenExpired
    sb.reset_requests()

    results = race(pool, "xero_race", "call")

    assert_spent_once(sb, results)
    expired = [r for r in sb.requests if r.path == "/connections" and r.status == 401]
    assert len(expired) == PROCESSES  # every process met the expiry and only one of them refreshed
    assert FileTokenStore(tmp_path / "xero_race.json").load()["refresh_token"] != stored["refresh_token"]


class TestSelection:
    def test_default_is_the_file_lock_of_the_store(self, tmp_path: Path) -> None:
        default = FileLock(tmp_path / "x.lock")
        assert build_token_lock(None, "s", default) is default
        assert build_token_lock("file", "s", default) is default

    def test_postgres_url_and_redis_url(self) -> None:
        lock = build_token_lock("postgresql://u:secret@db:5432/airflow", "store-a", FileLock("/tmp/x"))
        assert isinstance(lock, PostgresAdvisoryLock) and "secret" not in repr(lock)
        assert lock.key == build_token_lock("postgresql://other/db", "store-a", FileLock("/tmp/x")).key
        redis_lock = build_token_lock("redis://:secret@cache:6379/1", "store-a", FileLock("/tmp/x"))
        assert isinstance(redis_lock, RedisLock) and "secret" not in repr(redis_lock)

    @pytest.mark.parametrize("spec", ["zookeeper:1", "postgres:", "redis:cache", 7])
    def test_bad_spec_names_the_field(self, spec: Any) -> None:
        with pytest.raises(XeroConfigError, match="'token_lock'"):
            parse_connection_config("c", "id", "secret", {"token_lock": spec})

    def test_bad_spec_never_echoes_a_password(self) -> None:
        with pytest.raises(XeroConfigError) as info:
            parse_connection_config("c", "id", "secret", {"token_lock": "mysql://u:hunter2@db/x"})
        assert "hunter2" not in str(info.value)


@pytest.mark.postgres
def test_postgres_lock_excludes_a_second_holder(postgres_url: str) -> None:
    first = PostgresAdvisoryLock(postgres_url, "exclusive-test", timeout=0.2)
    second = PostgresAdvisoryLock(postgres_url, "exclusive-test", timeout=0.2)
    from xero.exceptions import XeroAuthError

    with first.hold(), pytest.raises(XeroAuthError, match="timed out"), second.hold():
        pass
    with second.hold():  # released on exit
        pass


def test_redis_lock_excludes_a_second_holder() -> None:
    if not redis_available():
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    from xero.exceptions import XeroAuthError

    first = RedisLock(REDIS_URL, "exclusive-test", timeout=0.2)
    second = RedisLock(REDIS_URL, "exclusive-test", timeout=0.2)
    with first.hold(), pytest.raises(XeroAuthError, match="timed out"), second.hold():
        pass
    with second.hold():
        pass
