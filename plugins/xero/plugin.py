"""The provider's Airflow plugin: serves the Data Docs site from the api-server (Airflow 3.1+ ``fastapi_apps``).

Registered through the ``airflow.plugins`` entry point of the provider distribution. The app is built on first
use, so processes that load plugins without serving HTTP (scheduler, workers) never import FastAPI for it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from xero.links import URL_PREFIX

__all__ = ["XeroPlugin"]


@cache
def _apps() -> list[dict[str, Any]]:
    from xero.docs_server import create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Xero Data Docs"}]


class XeroPlugin(AirflowPlugin):
    """Xero provider plugin: the Data Docs site under ``/xero/data-docs``."""

    name = "xero"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return _apps()
