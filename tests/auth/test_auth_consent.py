"""The consent step against the sandbox: headless, and ``python -m xero auth`` with its redirect server."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from xero.__main__ import main
from xero.consent import obtain_refresh_token_headless, run_consent
from xero.exceptions import XeroAuthError
from xero.hooks import XeroHook
from xero.tokens import FileTokenStore


def test_headless_consent_returns_a_working_refresh_token(sb, set_connection) -> None:
    refresh_token = obtain_refresh_token_headless(sb.url, sb.config.client_id, sb.config.client_secret)

    set_connection(refresh_token=refresh_token)
    hook = XeroHook()
    assert {t.tenant_id for t in hook.list_tenants()} == {t.tenant_id for t in sb.tenants}
    granted = set(hook.token_manager.store.load()["scope"].split())
    assert {"offline_access", "accounting.invoices.read", "accounting.contacts.read"} <= granted


def test_headless_consent_with_explicit_scopes(sb) -> None:
    token = obtain_refresh_token_headless(
        sb.url + "/", sb.config.client_id, sb.config.client_secret, ["accounting.settings.read"]
    )
    assert token and sb.auth._refresh[token].grant.scopes == ("offline_access", "accounting.settings.read")


def test_headless_consent_with_a_wrong_client_fails_clearly(sb) -> None:
    with pytest.raises(XeroAuthError, match="did not redirect back"):
        obtain_refresh_token_headless(sb.url, "someone-else", "nope")


def test_auth_command_stores_the_token_and_lists_the_tenants(
    sb, set_connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_connection("xero_cli")
    opened: list[str] = []

    def browser(url: str) -> None:  # what a browser does: follow the consent redirect to the callback
        opened.append(url)
        assert requests.get(url, timeout=10).status_code == 200

    assert main(["auth", "--conn-id", "xero_cli", "--port", "0"], open_url=browser) == 0

    out = capsys.readouterr().out
    assert len(opened) == 1 and opened[0] in out and "redirect_uri=http%3A%2F%2Flocalhost%3A" in opened[0]
    for tenant in sb.tenants:
        assert tenant.tenant_id in out and tenant.name in out
    stored = FileTokenStore(tmp_path / "xero_cli.json").load()
    assert stored and stored["refresh_token"] in sb.auth._refresh
    assert stored["refresh_token_issued_at"] == pytest.approx(stored["obtained_at"])
    for secret in (stored["refresh_token"], stored["access_token"], sb.config.client_secret):
        assert secret not in out
    # the hook now runs on the stored grant, without any refresh token in the connection
    sb.reset_requests()
    assert len(XeroHook("xero_cli").list_tenants()) == len(sb.tenants)
    assert not [r for r in sb.requests if r.path.endswith("/connect/token")]


def test_auth_command_no_browser_times_out_without_a_consent(
    sb, set_connection, capsys: pytest.CaptureFixture[str]
) -> None:
    set_connection("xero_cli")
    opened: list[str] = []
    status = main(
        ["auth", "--conn-id", "xero_cli", "--port", "0", "--no-browser", "--timeout", "0.2"],
        open_url=opened.append,
    )
    captured = capsys.readouterr()
    assert status == 1 and not opened
    assert "/connect/authorize?response_type=code" in captured.out
    assert "no consent received" in captured.err


def test_auth_command_refuses_a_custom_connection(sb, set_connection, capsys) -> None:
    set_connection("xero_cc", grant_type="client_credentials")
    assert main(["auth", "--conn-id", "xero_cc", "--no-browser"]) == 2
    assert "Custom Connection" in capsys.readouterr().out


def test_a_denied_consent_and_a_forged_state_are_refused(sb, tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t.json")

    def follow(url: str) -> None:
        requests.get(url.replace("state=", "state=forged"), timeout=10)

    with pytest.raises(XeroAuthError, match="different state"):
        run_consent(
            client_id=sb.config.client_id,
            client_secret=sb.config.client_secret,
            scopes=["offline_access", "accounting.settings.read"],
            authorize_url=f"{sb.url}/connect/authorize",
            token_url=f"{sb.url}/connect/token",
            connections_url=f"{sb.url}/connections",
            store=store,
            port=0,
            open_url=follow,
            echo=lambda line: None,
            timeout=10,
        )
    with pytest.raises(XeroAuthError, match="refused the consent: invalid_scope"):
        run_consent(
            client_id=sb.config.client_id,
            client_secret=sb.config.client_secret,
            scopes=["offline_access", "accounting.nonsense"],
            authorize_url=f"{sb.url}/connect/authorize",
            token_url=f"{sb.url}/connect/token",
            connections_url=f"{sb.url}/connections",
            store=store,
            port=0,
            open_url=lambda url: requests.get(url, timeout=10),
            echo=lambda line: None,
            timeout=10,
        )
    assert store.load() is None
