"""The "Data Docs" button of a validate task: a link to its validation report, served by the api-server.

The worker computes the link when the task ends (Airflow stores it with the task instance), from the organisation
and entity the task validated and the run; the page itself is served by the provider's plugin
(:mod:`xero.plugin`) under :data:`URL_PREFIX`. A task that ended before its report was written links to the
page anyway; the server then answers with the index of every report instead.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

from xero.datadocs import report_page

__all__ = ["URL_PREFIX", "XeroDataDocsLink", "data_docs_url"]

#: Where the api-server serves the Data Docs site.
URL_PREFIX = "/xero/data-docs"


def data_docs_url(path: str = "") -> str:
    """Return the URL of ``path`` in the served site: under ``[api] base_url`` when set, else host-relative."""
    from airflow.sdk.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{URL_PREFIX}/{path}"


class XeroDataDocsLink(BaseOperatorLink):
    """Links a validate task to the report of the organisation × entity it validated in its run."""

    name = "Data Docs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        extracted = getattr(operator, "extracted", None)
        if isinstance(extracted, dict) and extracted.get("tenant_id") and extracted.get("entity"):
            return data_docs_url(report_page(extracted["tenant_id"], extracted["entity"], ti_key.run_id))
        return data_docs_url()
