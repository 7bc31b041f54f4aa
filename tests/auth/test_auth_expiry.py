"""Refresh-token age: recorded when issued, warned about from 45 days, rotated after 7 days (once per run)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from xero.auth import TokenManager
from xero.tokens import FileLock, FileTokenStore

DAY = 86_400.0


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "xero.auth"]


def token_calls(sb) -> int:
    return sum(1 for r in sb.requests if r.path.endswith("/connect/token"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manager_for(sb, tmp_path: Path, clock: Clock):
    def build(**kwargs) -> TokenManager:
        return TokenManager(
            client_id=sb.config.client_id,
            client_secret=sb.config.client_secret,
            token_url=f"{sb.url}/connect/token",
            store=FileTokenStore(tmp_path / "tokens.json"),
            lock=FileLock(tmp_path / "tokens.lock"),
            clock=clock,
            **kwargs,
        )

    return build


def test_issue_time_is_recorded_and_kept_until_the_token_rotates(sb, manager_for, clock) -> None:
    first = manager_for(bootstrap_refresh_token=sb.issue_refresh_token())
    first.access_token()
    stored = first.store.load()
    assert stored["refresh_token_issued_at"] == clock.now
    assert first.refresh_token_age() == 0

    clock.now += 3 * DAY
    assert manager_for().refresh_token_age() == 3 * DAY
    manager_for().access_token()  # the access token expired long ago: a refresh rotates the token
    assert manager_for().store.load()["refresh_token_issued_at"] == clock.now


def test_a_week_old_refresh_token_is_rotated_once_per_run_even_with_a_valid_access_token(
    sb, manager_for, clock
) -> None:
    manager_for(bootstrap_refresh_token=sb.issue_refresh_token()).access_token()
    old = manager_for().store.load()
    # a valid access token, but a refresh token 8 days old (e.g. a long-lived access token)
    manager_for().store.save({**old, "refresh_token_issued_at": clock.now - 8 * DAY})
    sb.reset_requests()

    run = manager_for()
    token = run.access_token()
    assert token_calls(sb) == 1 and run.refresh_count == 1
    rotated = run.store.load()
    assert (
        rotated["refresh_token"] != old["refresh_token"] and rotated["refresh_token_issued_at"] == clock.now
    )
    assert token == rotated["access_token"]

    # once per run: even if the store still looked old, the same manager does not rotate again
    run.store.save({**rotated, "refresh_token_issued_at": clock.now - 9 * DAY})
    run._token = None
    assert run.access_token() == rotated["access_token"] and token_calls(sb) == 1
    # a younger refresh token is left alone by the next run
    run.store.save(rotated)
    assert manager_for().access_token() == rotated["access_token"] and token_calls(sb) == 1


def test_keep_alive_can_be_disabled(sb, manager_for, clock) -> None:
    manager_for(bootstrap_refresh_token=sb.issue_refresh_token()).access_token()
    stored = manager_for().store.load()
    manager_for().store.save({**stored, "refresh_token_issued_at": clock.now - 20 * DAY})
    sb.reset_requests()
    assert manager_for(keep_alive_age=None).access_token() == stored["access_token"]
    assert token_calls(sb) == 0


def test_a_rotation_by_another_process_while_waiting_is_used(sb, manager_for, clock) -> None:
    manager_for(bootstrap_refresh_token=sb.issue_refresh_token()).access_token()
    stored = manager_for().store.load()
    manager_for().store.save({**stored, "refresh_token_issued_at": clock.now - 8 * DAY})
    run = manager_for()
    other = manager_for()

    class OtherRotatesFirst:
        def hold(self):
            other.access_token()  # the other process rotates while this one waits for the lock
            return FileLock(run.store.path.with_name("x.lock")).hold()

    run.lock = OtherRotatesFirst()
    sb.reset_requests()
    assert run.access_token() == other.store.load()["access_token"]
    assert token_calls(sb) == 1 and run.refresh_count == 0 and other.refresh_count == 1


def test_warning_from_45_days_names_the_consent_command(sb, manager_for, clock, caplog) -> None:
    manager_for(bootstrap_refresh_token=sb.issue_refresh_token()).access_token()
    stored = manager_for().store.load()
    caplog.set_level(logging.WARNING, logger="xero.auth")

    manager_for().store.save({**stored, "refresh_token_issued_at": clock.now - 44 * DAY})
    manager_for(keep_alive_age=None).access_token()
    assert not warnings(caplog)

    manager_for().store.save({**stored, "refresh_token_issued_at": clock.now - 50 * DAY})
    run = manager_for(keep_alive_age=None)
    run.access_token()
    run._token = None
    run.access_token()
    [record] = warnings(caplog)
    message = record.getMessage()
    assert "50 days old" in message and "expires in 10 days" in message
    assert "python -m xero auth --conn-id xero_default" in message
    assert stored["refresh_token"] not in message and stored["access_token"] not in message
