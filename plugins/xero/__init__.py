"""Xero for Apache Airflow: hook, operators and the pipeline that lands Xero data in a warehouse."""

from __future__ import annotations

__version__ = "0.1.0"


def _text(label: str, description: str, default: str | None = None) -> dict:
    schema: dict = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


#: Typed extras of the ``xero`` connection form (keys are the extras :mod:`xero.hooks` reads).
CONN_FIELDS: dict[str, dict] = {
    "tenant_ids": _text(
        "Tenant IDs", "Comma-separated organisation ids to sync; empty = every connected organisation"
    ),
    "grant_type": {
        "label": "Grant type",
        "description": "authorization_code (standard app, consent + refresh token) or client_credentials "
        "(Custom Connection)",
        "schema": {
            "type": ["string", "null"],
            "enum": ["authorization_code", "client_credentials", None],
            "default": "authorization_code",
        },
    },
    "scopes": _text(
        "Scopes",
        "granular (apps created since March 2026), broad (older apps) or a comma-separated list",
        "granular",
    ),
    "refresh_token": {
        "label": "Refresh token (bootstrap)",
        "description": "Only when not using 'python -m xero auth': a refresh token from a consent, "
        "copied once into the token store",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "token_store": _text(
        "Token store", "variable (default), variable:<key> or file:/absolute/path/tokens.json", "variable"
    ),
    "token_lock": _text(
        "Token refresh lock",
        "file (one host, default), postgres:<conn_id> (advisory lock, for several hosts) or redis://host:6379/0",
        "file",
    ),
    "api_url": _text("API URL", "Accounting API base URL", "https://api.xero.com"),
    "identity_url": _text("Identity URL", "Token endpoint base URL", "https://identity.xero.com"),
    "authorize_url": _text(
        "Authorize URL", "Consent page", "https://login.xero.com/identity/connect/authorize"
    ),
    "timeout": {
        "label": "Timeout (s)",
        "description": "Seconds per request",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 1, "maximum": 600},
    },
    "page_size": {
        "label": "Page size",
        "description": "Records per page (1-1000)",
        "schema": {"type": ["integer", "null"], "default": 1000, "minimum": 1, "maximum": 1000},
    },
}


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
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema"],
                    "relabeling": {"login": "Client ID", "password": "Client Secret"},
                    "placeholders": {
                        "login": "Client ID of the Xero app",
                        "password": "Client Secret of the Xero app",
                    },
                },
                "conn-fields": CONN_FIELDS,
            },
        ],
    }
