"""TokenManager and token stores: refresh, rotation, persistence order, reuse, locking, errors."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.client.fakes import CLIENT_ID, CLIENT_SECRET, TOKEN_URL
from xero.auth import TokenManager, fingerprint, mask_secret
from xero.exceptions import XeroAuthError, XeroConfigError, XeroServerError
from xero.tokens import FileLock, FileTokenStore, VariableTokenStore, build_token_store

NOW = 1_700_000_000.0


class FakeIdentity:
    """Xero's token endpoint: rotating single-use refresh tokens, client credentials."""

    def __init__(self, first_refresh_token: str = "rt-0", delay: float = 0.0) -> None:
        self.valid = {first_refresh_token}
        self.issued = 0
        self.calls: list[dict[str, Any]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, request: Any, context: Any) -> str:
        form = {k: v[0] for k, v in parse_qs(request.text).items()}
        self.calls.append({"form": form, "auth": request.headers.get("Authorization")})
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if form.get("grant_type") == "refresh_token":
                if form.get("refresh_token") not in self.valid:
                    context.status_code = 400
                    return json.dumps({"error": "invalid_grant"})
                self.valid.discard(form["refresh_token"])
                self.issued += 1
                self.valid.add(f"rt-{self.issued}")
                body = {"access_token": f"at-{self.issued}", "refresh_token": f"rt-{self.issued}"}
            elif form.get("grant_type") == "client_credentials":
                self.issued += 1
                body = {"access_token": f"cc-{self.issued}"}
            else:
                context.status_code = 400
                return json.dumps({"error": "unsupported_grant_type"})
        context.headers["Content-Type"] = "application/json"
        return json.dumps({**body, "expires_in": 1800, "token_type": "Bearer"})


class DictVariables:
    """Stands in for airflow.sdk.Variable."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: str) -> None:
        self.writes.append(value)
        self.values[key] = value


@pytest.fixture
def identity(requests_mock) -> FakeIdentity:
    fake = FakeIdentity()
    requests_mock.post(TOKEN_URL, text=fake)
    return fake


@pytest.fixture
def store(tmp_path) -> FileTokenStore:
    return FileTokenStore(tmp_path / "tokens.json")


@pytest.fixture
def debug_logs(monkeypatch) -> Iterator[list[str]]:
    """Capture every log record at DEBUG, including requests_oauthlib's (which logs token bodies).

    Airflow reconfigures logging when the secrets masker first loads (removing pytest's capture
    handler), so this lets it do that first and then attaches its own handler to the root logger.
    """
    mask_secret("warm-up-secret")
    records: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"{record.name} {record.getMessage()}")

    handler = ListHandler(logging.DEBUG)
    root = logging.getLogger()
    monkeypatch.setattr(logging.getLogger("requests_oauthlib.oauth2_session"), "disabled", False)
    previous = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def manager(store, *, lock=None, clock=lambda: NOW, **kwargs) -> TokenManager:
    options: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_url": TOKEN_URL,
        "store": store,
        "lock": lock or FileLock(str(store.path) + ".lock"),
        "clock": clock,
    }
    options.update(kwargs)
    return TokenManager(**options)


class TestRefresh:
    def test_bootstrap_refresh_persists_the_rotated_token(self, identity, store) -> None:
        tokens = manager(store, bootstrap_refresh_token="rt-0")

        assert tokens.access_token() == "at-1"

        saved = store.load()
        assert saved["refresh_token"] == "rt-1" and saved["access_token"] == "at-1"
        assert saved["expires_at"] == NOW + 1800
        assert saved["bootstrap_fingerprint"] == fingerprint("rt-0")
        call = identity.calls[0]
        assert call["form"] == {"grant_type": "refresh_token", "refresh_token": "rt-0"}
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert call["auth"] == f"Basic {expected}"

    def test_new_refresh_token_is_saved_before_the_access_token_is_returned(self, identity, tmp_path) -> None:
        events: list[str] = []

        class RecordingStore(FileTokenStore):
            def save(self, token: dict) -> None:
                events.append(f"save {token['refresh_token']}")
                super().save(token)

        store = RecordingStore(tmp_path / "t.json")
        tokens = manager(store, bootstrap_refresh_token="rt-0")
        events.append(f"use {tokens.access_token()}")
        assert events == ["save rt-1", "use at-1"]

    def test_a_failed_save_never_hands_out_the_access_token(self, identity, tmp_path) -> None:
        class BrokenStore(FileTokenStore):
            def save(self, token: dict) -> None:
                raise OSError("disk full")

        tokens = manager(BrokenStore(tmp_path / "t.json"), bootstrap_refresh_token="rt-0")
        with pytest.raises(OSError, match="disk full"):
            tokens.access_token()
        assert tokens._token is None

    def test_a_valid_stored_token_is_reused_without_a_refresh(self, identity, store) -> None:
        store.save({"access_token": "at-stored", "refresh_token": "rt-0", "expires_at": NOW + 600})
        first, second = manager(store), manager(store)  # two tasks
        assert first.access_token() == "at-stored"
        assert second.access_token() == "at-stored"
        assert identity.calls == []

    def test_a_token_close_to_expiry_is_refreshed_once(self, identity, store) -> None:
        store.save({"access_token": "at-old", "refresh_token": "rt-0", "expires_at": NOW + 100})
        first = manager(store)
        assert first.access_token() == "at-1"
        assert manager(store).access_token() == "at-1"  # the next task reuses it
        assert len(identity.calls) == 1

    def test_a_refresh_made_by_another_process_while_waiting_is_used(self, identity, store) -> None:
        store.save({"access_token": "at-old", "refresh_token": "rt-0", "expires_at": NOW - 5})

        class OtherProcessRefreshes:
            @contextlib.contextmanager
            def hold(self) -> Iterator[None]:
                store.save(
                    {"access_token": "at-other", "refresh_token": "rt-other", "expires_at": NOW + 1800}
                )
                yield

        assert manager(store, lock=OtherProcessRefreshes()).access_token() == "at-other"
        assert identity.calls == []

    def test_forced_refresh_after_token_expired(self, identity, store) -> None:
        store.save({"access_token": "at-revoked", "refresh_token": "rt-0", "expires_at": NOW + 1000})
        tokens = manager(store)
        assert tokens.access_token() == "at-revoked"
        assert tokens.refresh("at-revoked") == "at-1"
        assert store.load()["refresh_token"] == "rt-1"

    def test_forced_refresh_uses_a_token_another_process_already_replaced(self, identity, store) -> None:
        store.save({"access_token": "at-new", "refresh_token": "rt-9", "expires_at": NOW + 1000})
        assert manager(store).refresh("at-revoked") == "at-new"
        assert identity.calls == []

    def test_concurrent_refreshers_spend_the_refresh_token_once(self, requests_mock, store) -> None:
        fake = FakeIdentity(delay=0.05)
        requests_mock.post(TOKEN_URL, text=fake)
        store.save({"access_token": "at-old", "refresh_token": "rt-0", "expires_at": NOW - 1})
        results: list[str] = []
        errors: list[BaseException] = []

        def task() -> None:
            try:
                results.append(manager(store).access_token())
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=task) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert results == ["at-1"] * 6
        assert len(fake.calls) == 1
        assert store.load()["refresh_token"] == "rt-1"


class TestBootstrap:
    def test_the_spent_bootstrap_token_is_not_reused(self, identity, store) -> None:
        manager(store, bootstrap_refresh_token="rt-0").access_token()
        store.save({**store.load(), "expires_at": NOW - 1})
        assert manager(store, bootstrap_refresh_token="rt-0").access_token() == "at-2"
        assert [c["form"]["refresh_token"] for c in identity.calls] == ["rt-0", "rt-1"]

    def test_a_new_consent_token_in_the_extra_replaces_the_store(self, identity, store) -> None:
        store.save(
            {
                "access_token": "at-x",
                "refresh_token": "rt-dead",
                "expires_at": NOW + 900,
                "bootstrap_fingerprint": "old",
            }
        )
        identity.valid.add("rt-fresh")
        assert manager(store, bootstrap_refresh_token="rt-fresh").access_token() == "at-1"
        assert identity.calls[0]["form"]["refresh_token"] == "rt-fresh"
        assert store.load()["bootstrap_fingerprint"] == fingerprint("rt-fresh")

    def test_no_refresh_token_anywhere_asks_for_consent(self, identity, store) -> None:
        with pytest.raises(XeroAuthError, match="consent step"):
            manager(store).access_token()
        assert identity.calls == []


class TestErrors:
    def test_invalid_grant_says_to_rerun_consent_without_the_token(self, identity, store) -> None:
        store.save({"refresh_token": "rt-spent-SECRET", "access_token": "at-0", "expires_at": NOW - 1})
        with pytest.raises(XeroAuthError) as info:
            manager(store, conn_id="xero_prod").access_token()
        text = str(info.value)
        assert "invalid_grant" in text and "consent step" in text and "xero_prod" in text
        assert "rt-spent-SECRET" not in text and CLIENT_SECRET not in text

    def test_invalid_client(self, requests_mock, store) -> None:
        requests_mock.post(TOKEN_URL, status_code=400, json={"error": "invalid_client"})
        store.save({"refresh_token": "rt-0"})
        with pytest.raises(XeroAuthError, match="Client ID or Client Secret"):
            manager(store).access_token()

    def test_token_endpoint_5xx_is_a_retryable_server_error(self, requests_mock, store) -> None:
        requests_mock.post(TOKEN_URL, status_code=502, text="bad gateway")
        store.save({"refresh_token": "rt-0"})
        with pytest.raises(XeroServerError, match="HTTP 502"):
            manager(store).access_token()
        assert store.load() == {"refresh_token": "rt-0"}  # nothing spent, nothing lost

    def test_secrets_never_reach_logs_or_reprs(self, identity, store, debug_logs) -> None:
        tokens = manager(store, bootstrap_refresh_token="rt-0-long-enough")
        identity.valid.add("rt-0-long-enough")
        access = tokens.access_token()
        text = "\n".join(debug_logs)
        assert "obtained a new access token" in text  # the capture works
        for secret in (CLIENT_SECRET, "rt-0-long-enough", "rt-1", access):
            assert secret not in text
            assert secret not in repr(tokens) and secret not in repr(store)


class TestClientCredentials:
    def test_grant_and_reuse(self, identity, store) -> None:
        scopes = ["accounting.invoices.read", "accounting.contacts.read"]
        first = manager(store, grant_type="client_credentials", scopes=scopes)
        assert first.access_token() == "cc-1"
        assert manager(store, grant_type="client_credentials", scopes=scopes).access_token() == "cc-1"
        assert len(identity.calls) == 1
        form = identity.calls[0]["form"]
        assert form == {"grant_type": "client_credentials", "scope": " ".join(scopes)}
        assert "refresh_token" not in store.load()


class TestStores:
    def test_file_store_is_atomic_and_private(self, store) -> None:
        assert store.load() is None
        store.save({"access_token": "a", "refresh_token": "r", "expires_at": 1})
        assert store.load() == {"access_token": "a", "refresh_token": "r", "expires_at": 1}
        assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
        assert [p.name for p in store.path.parent.iterdir()] == ["tokens.json"]

    def test_file_store_rejects_garbage_without_echoing_it(self, store) -> None:
        store.path.write_text("rt-LEAK{")
        with pytest.raises(XeroAuthError) as info:
            store.load()
        assert "rt-LEAK" not in str(info.value)

    def test_variable_store_round_trip(self) -> None:
        variables = DictVariables()
        store = VariableTokenStore("xero_token__x", getter=variables.get, setter=variables.set)
        assert store.load() is None
        store.save({"refresh_token": "r"})
        assert store.load() == {"refresh_token": "r"}
        assert json.loads(variables.values["xero_token__x"]) == {"refresh_token": "r"}

    def test_refresh_through_a_variable_store(self, identity, tmp_path) -> None:
        variables = DictVariables()
        store = VariableTokenStore("xero_token__x", getter=variables.get, setter=variables.set)
        tokens = TokenManager(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_url=TOKEN_URL,
            store=store,
            lock=FileLock(tmp_path / "x.lock"),
            bootstrap_refresh_token="rt-0",
            clock=lambda: NOW,
        )
        assert tokens.access_token() == "at-1"
        assert json.loads(variables.writes[-1])["refresh_token"] == "rt-1"

    @pytest.mark.parametrize(
        ("spec", "kind", "lock_name"),
        [
            pytest.param(
                "variable", VariableTokenStore, "airflow-xero-xero_token__xero_default.lock", id="variable"
            ),
            pytest.param("file:/srv/xero/t.json", FileTokenStore, "t.json.lock", id="file"),
        ],
    )
    def test_build_token_store(self, spec, kind, lock_name) -> None:
        built, lock = build_token_store(spec, "xero_default")
        assert isinstance(built, kind)
        assert lock.path.name == lock_name

    @pytest.mark.parametrize("spec", ["file:", "file:relative/t.json", "redis://x", "vault"])
    def test_bad_oauth_store_names_the_field(self, spec) -> None:
        with pytest.raises(XeroConfigError, match="oauth_store"):
            build_token_store(spec, "xero_default")

    def test_lock_times_out_with_a_clear_error(self, tmp_path) -> None:
        held = FileLock(tmp_path / "l.lock")
        waiting = FileLock(tmp_path / "l.lock", timeout=0.1, poll=0.01)
        with held.hold(), pytest.raises(XeroAuthError, match="token lock"), waiting.hold():
            pass
