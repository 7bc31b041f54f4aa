"""A faithful local Xero (identity + accounting API) for demos, tests and benchmarks.

``Sandbox(SandboxConfig(...))`` builds seeded data for several organisations; ``with sb.serve() as
url`` runs it over HTTP on 127.0.0.1; ``airflow_connection(url, ...)`` is an Airflow ``xero`` connection
on it. See README.md in this package for endpoints, config and faults.
"""

from __future__ import annotations

from xero_sandbox.airflow_conn import airflow_connection
from xero_sandbox.clock import Clock
from xero_sandbox.config import RequestRecord, SandboxConfig, TenantInfo
from xero_sandbox.faults import KINDS as FAULT_KINDS
from xero_sandbox.faults import Faults
from xero_sandbox.sandbox import ENTITY_NAMES, Sandbox

__all__ = [
    "ENTITY_NAMES",
    "FAULT_KINDS",
    "Clock",
    "Faults",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "TenantInfo",
    "airflow_connection",
]
