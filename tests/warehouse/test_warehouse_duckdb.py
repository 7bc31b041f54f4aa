"""DuckDB specifics: every connection is small in memory unless the Airflow connection says otherwise."""

from __future__ import annotations

from xero.warehouse import Warehouse

SETTINGS = (
    "SELECT current_setting('memory_limit'), current_setting('threads'), "
    "current_setting('preserve_insertion_order')"
)


def test_connections_get_the_default_settings(warehouse_factory) -> None:
    warehouse: Warehouse = warehouse_factory("duckdb")
    assert warehouse.query(SETTINGS) == [("122.0 MiB", 1, False)]


def test_the_connection_extra_overrides_the_defaults(warehouse_factory) -> None:
    warehouse: Warehouse = warehouse_factory(
        "duckdb", extra={"memory_limit": "1GB", "threads": 2, "settings": {"preserve_insertion_order": True}}
    )
    assert warehouse.query(SETTINGS) == [("953.6 MiB", 2, True)]
