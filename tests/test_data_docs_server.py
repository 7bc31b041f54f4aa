"""The Data Docs served by the api-server through the provider's plugin, and the validate task's link to them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from xero import datadocs
from xero.docs_server import create_app
from xero.links import XeroDataDocsLink
from xero.operators import XeroTransformOperator

REPO = Path(__file__).resolve().parent.parent
TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"
RUN = "scheduled__2026-12-03T10:00:00+00:00"


def report(**changes: object) -> datadocs.Report:
    values: dict[str, object] = {
        "tenant_id": TENANT,
        "tenant_name": "Demo Company (NZ)",
        "entity": "invoices",
        "run_id": RUN,
        "status": "quarantined",
        "records": 10,
        "kept": 9,
        "quarantined": 1,
        "quarantined_by_normalizer": 0,
        "quarantined_by_validator": 1,
        "duplicates_dropped": 0,
        "bad_share": 0.1,
        "max_bad_share": 0.2,
        "rows": {"invoice": 9},
        "reasons": {"expect_column_values_to_be_in_set(status)": 1},
    }
    values.update(changes)
    return datadocs.Report(**values)  # type: ignore[arg-type]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "data" / "data_docs"
    datadocs.publish(site, report())
    (tmp_path / "data" / "secret.txt").write_text("not for the browser")
    return site


@pytest.fixture
def client(site: Path) -> TestClient:
    from airflow.api_fastapi.core_api.security import get_user

    app = create_app(site)
    app.dependency_overrides[get_user] = lambda: object()  # a signed-in user
    return TestClient(app)


def test_serves_the_index_and_the_report_pages(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert "Demo Company (NZ)" in index.text and "invoices" in index.text
    page = client.get(f"/{datadocs.report_page(TENANT, 'invoices', RUN)}")
    assert page.status_code == 200
    assert "expect_column_values_to_be_in_set(status)" in page.text
    assert client.get("/index.html").text == index.text


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        f"/{TENANT}/../../secret.txt",
        f"/{TENANT}/invoices/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/.lock",
        "//etc/passwd",
    ],
)
def test_refuses_paths_outside_the_site_and_hidden_files(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert "not for the browser" not in answer.text


def test_a_symlink_out_of_the_site_is_refused(client: TestClient, site: Path) -> None:
    (site / "escape.html").symlink_to(site.parent / "secret.txt")
    assert client.get("/escape.html").status_code == 404


def test_a_missing_report_points_to_the_index(client: TestClient) -> None:
    answer = client.get(f"/{datadocs.report_page(TENANT, 'payments', 'manual__never')}")
    assert answer.status_code == 404
    assert 'href="../../index.html"' in answer.text


def test_an_empty_site_says_so(tmp_path: Path) -> None:
    from airflow.api_fastapi.core_api.security import get_user

    app = create_app(tmp_path / "nothing")
    app.dependency_overrides[get_user] = lambda: object()
    answer = TestClient(app).get("/")
    assert answer.status_code == 200 and "No validation has run yet" in answer.text


def test_needs_an_airflow_session(site: Path) -> None:
    answer = TestClient(create_app(site)).get("/")
    assert answer.status_code == 401
    assert "Demo Company" not in answer.text


def test_the_plugin_mounts_the_site_and_is_registered_by_the_provider(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.plugins_manager import is_valid_plugin

    from xero import plugin

    monkeypatch.setenv("XERO_DATA_DIR", str(site.parent))
    plugin._apps.cache_clear()
    try:
        [app] = plugin.XeroPlugin().fastapi_apps
        assert app["url_prefix"] == "/xero/data-docs" and app["name"] == "Xero Data Docs"
        from airflow.api_fastapi.core_api.security import get_user

        app["app"].dependency_overrides[get_user] = lambda: object()
        assert "Demo Company (NZ)" in TestClient(app["app"]).get("/").text
    finally:
        plugin._apps.cache_clear()
    assert is_valid_plugin(plugin.XeroPlugin)
    entry_points = tomllib.loads((REPO / "plugins" / "pyproject.toml").read_text())["project"]["entry-points"]
    assert entry_points["airflow.plugins"] == {"xero": "xero.plugin:XeroPlugin"}


def test_the_api_server_serves_the_site_under_the_plugin_prefix(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's own mounting of plugin apps (``init_plugins``) puts the site under ``/xero/data-docs``."""
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import FastAPI

    from xero import plugin

    monkeypatch.setenv("XERO_DATA_DIR", str(site.parent))
    plugin._apps.cache_clear()
    monkeypatch.setattr(
        plugins_manager, "get_fastapi_plugins", lambda: (plugin.XeroPlugin().fastapi_apps, [])
    )
    try:
        api = FastAPI()
        init_plugins(api)
        plugin.XeroPlugin().fastapi_apps[0]["app"].dependency_overrides[get_user] = lambda: object()
        link = XeroDataDocsLink().get_link(
            XeroTransformOperator(task_id="validate", extracted={"tenant_id": TENANT, "entity": "invoices"}),
            ti_key=_key(),
        )
        answer = TestClient(api).get(link)
        assert answer.status_code == 200 and "Demo Company (NZ)" in answer.text
    finally:
        plugin._apps.cache_clear()


def _key():
    from airflow.sdk.types import TaskInstanceKey

    return TaskInstanceKey(dag_id="xero_sync", task_id="validate", run_id=RUN, map_index=3)


def test_the_validate_operator_links_to_its_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert XeroDataDocsLink() in XeroTransformOperator.operator_extra_links
    operator = XeroTransformOperator(
        task_id="validate", extracted={"tenant_id": TENANT, "entity": "invoices"}
    )
    link = XeroDataDocsLink().get_link(operator, ti_key=_key())
    assert link == f"/xero/data-docs/{TENANT}/invoices/scheduled__2026-12-03T10_00_00_00_00.html"
    assert link.removeprefix("/xero/data-docs/") == datadocs.report_page(TENANT, "invoices", RUN)


def test_the_link_follows_the_api_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.configuration import conf

    monkeypatch.setattr(conf, "get", lambda *args, **kwargs: "https://airflow.example.com/")
    operator = XeroTransformOperator(
        task_id="validate", extracted={"tenant_id": TENANT, "entity": "invoices"}
    )
    assert (
        XeroDataDocsLink()
        .get_link(operator, ti_key=_key())
        .startswith("https://airflow.example.com/xero/data-docs/")
    )
    unknown = XeroTransformOperator(task_id="validate", extracted="{{ not rendered }}")  # type: ignore[arg-type]
    assert (
        XeroDataDocsLink().get_link(unknown, ti_key=_key()) == "https://airflow.example.com/xero/data-docs/"
    )
