"""Fixtures of the fault tests: a sandbox, a Xero and a DuckDB connection, and a runner of the pipeline steps.

:class:`Harness` runs ``plan → extract → transform → load`` in-process, as the DAG would, with the hook's
waits on the sandbox's clock (nothing really sleeps) and a DuckDB warehouse under ``tmp_path``. It reruns a
failed or stopped sync the way a user would (a new run) and takes a checksum of every warehouse table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tenacity

from xero import pipeline
from xero.entities import ENTITIES
from xero_sandbox import Sandbox, SandboxConfig, airflow_connection

SCHEMA = "xero"
#: Columns that say when or by which run a row was written, not what it holds.
BOOKKEEPING = {"_loaded_at", "_run_id", "_quarantined_at"}


def small_config(**overrides: Any) -> SandboxConfig:
    """Return a small sandbox (several pages per entity at ``page_size`` 25), limits off unless given."""
    base = SandboxConfig(
        seed=5,
        tenants=1,
        accounts=12,
        contacts=30,
        invoices=60,
        max_line_items=2,
        frozen_clock=True,
    ).without_limits()
    from dataclasses import replace

    return replace(base, **overrides)


@dataclass
class Harness:
    """Runs syncs of one sandbox into one DuckDB warehouse.

    :param sb: the served sandbox.
    :param root: a directory of its own.
    :param monkeypatch: to set the connections in the environment.
    :param name: suffix of the connection ids, so several harnesses can share a sandbox.
    :param page_size: records per page (small, so every entity takes several pages).
    :param timeout: seconds per request.
    :param entities: the entities to sync (default: all).
    """

    sb: Sandbox
    root: Path
    monkeypatch: pytest.MonkeyPatch
    name: str = "main"
    page_size: int = 25
    timeout: float = 5.0
    entities: list[str] | None = None
    runs: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.xero_conn_id = f"xero_{self.name}"
        self.warehouse_conn_id = f"warehouse_{self.name}"
        self.data_dir = self.root / "data"
        self.database = self.root / "warehouse.duckdb"
        self.connect(self.sb.issue_refresh_token())

    def connect(self, refresh_token: str) -> None:
        """(Re)point the Xero connection at the sandbox with a fresh consent and token store."""
        assert self.sb.url, "serve the sandbox first"
        connection = airflow_connection(
            self.sb.url,
            client_id=self.sb.config.client_id,
            client_secret=self.sb.config.client_secret,
            token_file=self.root / "tokens.json",
            refresh_token=refresh_token,
            page_size=self.page_size,
            timeout=self.timeout,
        )
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{self.xero_conn_id.upper()}", json.dumps(connection))
        self.monkeypatch.setenv(
            f"AIRFLOW_CONN_{self.warehouse_conn_id.upper()}",
            json.dumps({"conn_type": "duckdb", "host": str(self.database)}),
        )

    @property
    def hook_options(self) -> dict[str, Any]:
        """Return the hook's options: waits move the sandbox clock instead of sleeping."""
        return {
            "sleep": self.sb.clock.advance,
            "clock": self.sb.clock.timestamp,
            "retry_wait": tenacity.wait_none(),
        }

    def run(self) -> list[dict[str, Any]]:
        """Run one sync (every tenant × entity); exceptions propagate like a failed DAG run."""
        self.runs += 1
        run_id = f"run_{self.name}_{self.runs}"
        targets = pipeline.plan(self.xero_conn_id, self.warehouse_conn_id, SCHEMA, self.entities)
        results = []
        for target in targets:
            extracted = self.extract(target, run_id)
            transformed = pipeline.transform(extracted)
            loaded = pipeline.load(transformed, self.warehouse_conn_id, SCHEMA, run_id)
            results.append({**loaded, "stopped": extracted.get("stopped")})
        self.results = results
        return results

    def extract(self, target: dict[str, Any], run_id: str) -> dict[str, Any]:
        """Run the extract step of one target."""
        return pipeline.extract(
            self.xero_conn_id,
            target["tenant_id"],
            target["entity"],
            target["modified_since"],
            self.data_dir,
            run_id,
            tenant_name=target.get("tenant_name"),
            hook_options=self.hook_options,
        )

    def sync_until_done(self, max_runs: int = 6) -> list[str]:
        """Run syncs until one completes without an error or a stop; return what each earlier run hit.

        A failed run is rerun at once; a run stopped by the daily limit is rerun a day later (sandbox time).
        """
        outcomes: list[str] = []
        for _ in range(max_runs):
            try:
                results = self.run()
            except Exception as exc:  # a failed run: the user reruns it
                outcomes.append(type(exc).__name__)
                continue
            stopped = [r["stopped"] for r in results if r.get("stopped")]
            if not stopped:
                return outcomes
            outcomes.append("stopped: " + stopped[0])
            self.sb.clock.advance(86_400)  # the user's next run is the next day, when calls resume
        raise AssertionError(f"the sync did not converge in {max_runs} runs: {outcomes}")

    # -- reading the warehouse -----------------------------------------------------------------------
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` on the warehouse (read only)."""
        import duckdb

        with duckdb.connect(str(self.database), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    def tables(self) -> list[str]:
        """Return the data tables of the warehouse."""
        return [table.name for entity in ENTITIES.values() for table in entity.tables]

    def snapshot(self, *, bookkeeping: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Return every row of every table, sorted; without the bookkeeping columns unless asked.

        ``_sync_state`` is reduced to its watermarks and ``_quarantine`` to what was quarantined and why.
        """
        import duckdb

        out: dict[str, list[tuple[Any, ...]]] = {}
        with duckdb.connect(str(self.database), read_only=True) as conn:
            for table in self.tables():
                cursor = conn.execute(f"select * from {SCHEMA}.{table}")
                names = [column[0] for column in cursor.description]
                keep = [i for i, n in enumerate(names) if bookkeeping or n not in BOOKKEEPING]
                out[table] = sorted((tuple(str(row[i]) for i in keep) for row in cursor.fetchall()), key=repr)
            out["_sync_state"] = sorted(
                tuple(map(str, row))
                for row in conn.execute(
                    f"select tenant_id, entity, watermark from {SCHEMA}._sync_state"
                ).fetchall()
            )
            out["_quarantine"] = sorted(
                tuple(map(str, row))
                for row in conn.execute(
                    f"select tenant_id, entity, table_name, record_id, reason from {SCHEMA}._quarantine"
                ).fetchall()
            )
        return out

    def checksum(self) -> dict[str, str]:
        """Return a SHA-256 per table of :meth:`snapshot` (row counts included in the digest)."""
        return {
            table: hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
            for table, rows in self.snapshot().items()
        }


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """Serve a small sandbox without rate limits on a frozen clock."""
    sandbox = Sandbox(small_config())
    with sandbox.serve():
        yield sandbox


def clean_checksum(
    sb: Sandbox, root: Path, monkeypatch: pytest.MonkeyPatch, entities: list[str] | None = None
) -> dict[str, str]:
    """Clear the faults, sync the sandbox as it is now (limits off) into a fresh warehouse; return its checksum."""
    sb.faults.clear()
    limits = sb.limits.cfg
    sb.limits.cfg = sb.config.without_limits()
    try:
        reference = Harness(sb, root, monkeypatch, name="reference", entities=entities)
        assert reference.sync_until_done(max_runs=1) == []
        return reference.checksum()
    finally:
        sb.limits.cfg = limits
