"""The provider metadata Airflow reads: connection type ``xero``, its hook and its typed extras."""

from __future__ import annotations

import pytest

from xero import CONN_FIELDS, get_provider_info
from xero.hooks import KNOWN_EXTRAS, parse_connection_config


def test_the_task_runtime_knows_the_xero_hook() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManagerTaskRuntime()
    hook = manager.hooks.get("xero")
    assert hook is not None, "the provider is not installed (pip install -e plugins/)"
    assert hook.hook_class_name == "xero.hooks.XeroHook"
    assert hook.connection_id_attribute_name == "xero_conn_id"
    assert hook.hook_name == "Xero"
    assert "airflow-provider-xero" in manager.providers


def test_typed_extras_reach_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    assert set(CONN_FIELDS) <= {w.split("__")[-1] for w in widgets if w.startswith("extra__xero__")}
    assert widgets["extra__xero__refresh_token"].is_sensitive
    assert not widgets["extra__xero__scopes"].is_sensitive
    assert widgets["extra__xero__scopes"].field["value"] == "granular"


def test_every_typed_extra_is_one_the_hook_reads() -> None:
    assert set(CONN_FIELDS) <= KNOWN_EXTRAS
    [conn_type] = get_provider_info()["connection-types"]
    assert conn_type["hook-class-name"] == "xero.hooks.XeroHook"


@pytest.mark.parametrize("name", sorted(n for n, f in CONN_FIELDS.items() if "default" in f["schema"]))
def test_each_typed_default_is_accepted_by_the_hook(name: str) -> None:
    default = CONN_FIELDS[name]["schema"]["default"]
    config = parse_connection_config("c", "client", "secret", {name: default})
    assert config.conn_id == "c"


def test_only_the_refresh_token_has_a_name_airflow_masks() -> None:
    from airflow._shared.secrets_masker import should_hide_value_for_key

    masked = {name for name in CONN_FIELDS if should_hide_value_for_key(name)}
    assert masked == {"refresh_token"}
    assert "default" not in CONN_FIELDS["refresh_token"]["schema"]


def test_the_form_served_to_the_ui_shows_every_default() -> None:
    """What the UI's connection form receives (``/ui/connections/hook_meta``): no default replaced by ``***``."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    [xero] = [meta for meta in HookMetaService.hook_meta_data() if meta.connection_type == "xero"]
    values = {name: spec["value"] for name, spec in (xero.extra_fields or {}).items()}
    defaults = {n: f["schema"]["default"] for n, f in CONN_FIELDS.items() if "default" in f["schema"]}
    assert {name: values[name] for name in defaults} == defaults
    assert xero.standard_fields is not None and xero.standard_fields.password is not None
    assert xero.standard_fields.password.title == "Client Secret"
