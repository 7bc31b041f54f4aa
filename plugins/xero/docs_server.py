"""Serving the Data Docs site (:mod:`xero.datadocs`) from the Airflow api-server, to signed-in users only.

A browser does not follow ``file://`` links from the Airflow UI, so the provider's plugin (:mod:`xero.plugin`)
mounts this small FastAPI app on the api-server. It serves the files of the site read-only: the index at ``/``,
report pages below it; nothing outside the site (paths are resolved and must stay inside it), no hidden files.
Every request must carry the Airflow session (the UI's cookie or a bearer token), as the REST API does: the
reports quote values of quarantined records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from xero.datadocs import site_dir

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["DATA_DIR_ENV", "create_app", "default_site"]

#: The data directory of the syncs (the DAG reads the same variable).
DATA_DIR_ENV = "XERO_DATA_DIR"

_EMPTY = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Data Docs</title></head>
<body style="font-family: system-ui, sans-serif; margin: 2rem"><h1>Xero validation reports</h1>
<p>No validation has run yet.</p></body></html>"""
_MISSING = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>No report</title></head>
<body style="font-family: system-ui, sans-serif; margin: 2rem"><h1>No report here</h1>
<p>This validation has not published a report (yet), or it was pruned.
<a href="{index}">See every organisation and entity</a>.</p></body></html>"""


def default_site() -> Path:
    """Return the site of the data directory the DAG uses by default (``XERO_DATA_DIR``)."""
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return site_dir(os.environ.get(DATA_DIR_ENV) or home / "data" / "xero")


def create_app(site: str | Path | None = None) -> FastAPI:
    """Return the app serving ``site`` (default :func:`default_site`)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse

    root = Path(site) if site is not None else default_site()
    app = FastAPI(title="Xero Data Docs", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/{path:path}", response_model=None)
    def page(path: str, _user: object = Depends(get_user)) -> object:  # annotations FastAPI can resolve
        base = root.resolve()
        target = (base / (path or "index.html")).resolve()
        if not target.is_relative_to(base) or any(p.startswith(".") for p in target.relative_to(base).parts):
            raise HTTPException(status_code=404, detail="Not found")
        if target.is_file():
            return FileResponse(target)
        if target == base / "index.html":
            return HTMLResponse(_EMPTY)
        if target.suffix == ".html":
            index = "../" * (len(target.relative_to(base).parts) - 1) + "index.html"
            return HTMLResponse(_MISSING.format(index=index), status_code=404)
        raise HTTPException(status_code=404, detail="Not found")

    return app
