"""Xero for Apache Airflow: hook, operators and the pipeline that lands Xero data in a warehouse."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Describe this distribution to Airflow's ProvidersManager (connection type ``xero``)."""
    return {
        "package-name": "airflow-provider-xero",
        "name": "Xero",
        "description": "Incremental Xero accounting extracts into a SQL warehouse.",
        "versions": [__version__],
        "connection-types": [
            {"connection-type": "xero", "hook-class-name": "xero.hooks.XeroHook"},
        ],
    }
