"""Xero for Apache Airflow: hook, operators and the pipeline that lands Xero data in a warehouse."""

from __future__ import annotations

import copy

from xero.connection_form import CONN_FIELDS, provider_field_behaviour

__version__ = "0.1.0"

__all__ = ["CONN_FIELDS", "get_provider_info"]


def get_provider_info() -> dict:
    """Describe this distribution to Airflow's ProvidersManager (connection type ``xero``)."""
    return {
        "package-name": "airflow-provider-xero",
        "name": "Xero",
        "description": "Incremental Xero accounting extracts into a SQL warehouse.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "xero",
                "hook-class-name": "xero.hooks.XeroHook",
                "hook-name": "Xero",
                "ui-field-behaviour": provider_field_behaviour(),
                "conn-fields": copy.deepcopy(CONN_FIELDS),
            },
        ],
    }
