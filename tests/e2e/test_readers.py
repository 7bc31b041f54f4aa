"""Readers never break a sync: analysts' connections stay open on the read copy through a whole DAG run.

Two reader processes, one on this project's DuckDB and one on the oldest DuckDB release that reads the copy
(1.2, installed from the package registry), hold ``duckdb.connect(read_copy, read_only=True)`` and keep
querying while ``airflow dags test`` syncs changes into the warehouse. The run succeeds; every answer the
readers got during it is the state they opened (never a half-loaded one); once they reconnect they see the
new state, the same the warehouse holds.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from scripts.local_airflow import LocalAirflow
from tests.e2e.support import CLIENT_ID, CLIENT_SECRET, dag_env
from tests.warehouse.duckdb_clients import OLDEST_READER, current_client, duckdb_client, dump
from xero.warehouse.publish import read_copy_path
from xero_sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.e2e

#: What a reader looks at: the invoices (count, voided, latest load, distinct references) and the watermark.
STATE_SQL = (
    "SELECT count(*), count(*) FILTER (WHERE status = 'VOIDED'), CAST(max(_loaded_at) AS VARCHAR), "
    "count(DISTINCT reference), (SELECT CAST(max(watermark) AS VARCHAR) FROM {catalog}.xero._sync_state) "
    "FROM {catalog}.xero.invoice"
)

#: Holds ``argv[1]`` read-only and queries it until ``argv[2]/reconnect`` exists, writing each new answer
#: (with how many queries gave it) to ``argv[2]/seen.jsonl``; then reconnects, writes ``after.json``, exits.
READER = r"""
import json, os, sys, time
import duckdb
path, folder, state_sql = sys.argv[1], sys.argv[2], sys.argv[3]

def open_():
    conn = duckdb.connect(path, read_only=True)
    catalog = '"' + conn.execute("SELECT current_database()").fetchone()[0] + '"'
    return conn, state_sql.format(catalog=catalog)

conn, sql = open_()
open(os.path.join(folder, "ready"), "w").close()
seen, queries = None, 0
with open(os.path.join(folder, "seen.jsonl"), "w") as out:
    while not os.path.exists(os.path.join(folder, "reconnect")):
        state = list(conn.execute(sql).fetchone())
        queries += 1
        if state != seen:
            seen = state
            out.write(json.dumps({"state": state, "after_queries": queries}) + "\n")
            out.flush()
        time.sleep(0.05)
    out.write(json.dumps({"queries": queries}) + "\n")
conn.close()
conn, sql = open_()
with open(os.path.join(folder, "after.json"), "w") as out:
    json.dump({"state": list(conn.execute(sql).fetchone()), "version": duckdb.__version__}, out)
"""


class ReaderProcess:
    """One analyst: a process holding the read copy open and querying it."""

    def __init__(self, command: list[str], read_copy: Path, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.process = subprocess.Popen(
            [*command, READER, str(read_copy), str(folder), STATE_SQL], stderr=subprocess.PIPE, text=True
        )
        self._wait_for("ready")

    def _wait_for(self, name: str) -> None:
        for _ in range(1200):  # the process only has to start: fail clearly if it died instead
            if (self.folder / name).exists():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"reader exited {self.process.returncode}: {self.process.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(0.1)
        raise AssertionError(f"reader never wrote {name}")

    def seen(self) -> list[dict[str, Any]]:
        lines = (self.folder / "seen.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def reconnect(self) -> dict[str, Any]:
        """Let the reader reconnect; return what it then sees."""
        (self.folder / "reconnect").touch()
        self.process.wait(timeout=120)
        assert self.process.returncode == 0, self.process.stderr.read()  # type: ignore[union-attr]
        return dict(json.loads((self.folder / "after.json").read_text()))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture
def readers() -> Iterator[list[ReaderProcess]]:
    started: list[ReaderProcess] = []
    yield started
    for reader in started:
        reader.stop()


def warehouse_state(database: Path) -> list[Any]:
    """Return :data:`STATE_SQL` on the warehouse itself (no writer is running)."""
    conn = duckdb.connect(str(database), read_only=True)
    try:
        catalog = '"' + conn.execute("SELECT current_database()").fetchone()[0] + '"'  # type: ignore[index]
        return list(conn.execute(STATE_SQL.format(catalog=catalog)).fetchone())  # type: ignore[arg-type]
    finally:
        conn.close()


def test_readers_hold_the_read_copy_through_a_dag_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readers: list[ReaderProcess]
) -> None:
    database = tmp_path / "warehouse" / "warehouse.duckdb"
    database.parent.mkdir()
    read_copy = read_copy_path(database)
    sb = Sandbox(
        SandboxConfig(
            seed=5, tenants=1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, contacts=40, invoices=300
        )
    )
    with sb.serve():
        env = dag_env(sb, tmp_path, json.dumps({"conn_type": "duckdb", "host": str(database)}))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        airflow = LocalAirflow(tmp_path / "airflow", env=env)
        airflow.prepare()

        first = airflow.dags_test("xero_sync")
        assert first.returncode == 0, f"first run failed:\n{first.stdout[-6000:]}\n{first.stderr[-3000:]}"
        assert read_copy.exists()
        old = warehouse_state(database)

        clients = {"current": current_client(), OLDEST_READER: duckdb_client(OLDEST_READER)}
        for label, command in clients.items():
            readers.append(ReaderProcess(command, read_copy, tmp_path / f"reader-{label}"))

        tenant_id = sb.tenants[0].tenant_id
        for n in range(3):
            sb.update_invoice(tenant_id, Reference=f"while readers read {n}")
        sb.void_invoice(tenant_id)  # the readers hold the copy from here to the end of the run
        second = airflow.dags_test("xero_sync")
        assert second.returncode == 0, f"second run failed:\n{second.stdout[-6000:]}\n{second.stderr[-3000:]}"

    new = warehouse_state(database)
    assert new != old and new[1] == old[1] + 1  # the run changed what readers look at
    versions = []
    for reader in readers:
        after = reader.reconnect()
        *answers, tally = reader.seen()
        assert [answer["state"] for answer in answers] == [old]  # the state it opened, and only that
        assert tally["queries"] > 1  # it kept querying through the run
        assert after["state"] == new
        versions.append(after["version"])
    assert versions[0].startswith("2.") and versions[1] == OLDEST_READER

    oldest, warehouse = dump(duckdb_client(OLDEST_READER), read_copy), dump(current_client(), database)
    assert oldest["relations"] == warehouse["relations"]  # every table, view and macro of the real run


#: On PostgreSQL analysts read the warehouse itself (MVCC): holds a connection open in autocommit mode, as
#: BI tools and SQL clients do by default, querying a table and a mart until ``argv[3]/stop`` exists.
PG_READER = r"""
import json, os, sys, time
import psycopg
url, schema, folder = sys.argv[1], sys.argv[2], sys.argv[3]
sql = (
    f'SELECT (SELECT count(*) FROM "{schema}".invoice), '
    f'(SELECT count(*) FROM "{schema}".invoice WHERE status = \'VOIDED\'), '
    f'(SELECT count(*) FROM "{schema}".xero__revenue_by_month)'
)
conn = psycopg.connect(url, autocommit=True)
conn.execute("SET default_transaction_read_only = on")
open(os.path.join(folder, "ready"), "w").close()
seen, queries = [], 0
while not os.path.exists(os.path.join(folder, "stop")):
    state = list(conn.execute(sql).fetchone())
    queries += 1
    if not seen or seen[-1] != state:
        seen.append(state)
    time.sleep(0.05)
with open(os.path.join(folder, "seen.json"), "w") as out:
    json.dump({"seen": seen, "queries": queries}, out)
conn.close()
"""


@pytest.mark.postgres
def test_postgres_readers_stay_connected_through_a_dag_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, pg_schema: str
) -> None:
    import sys

    sb = Sandbox(
        SandboxConfig(
            seed=5, tenants=1, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, contacts=40, invoices=300
        )
    )
    with sb.serve():
        env = dag_env(sb, tmp_path, postgres_url, pg_schema)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        airflow = LocalAirflow(tmp_path / "airflow", env=env)
        airflow.prepare()
        first = airflow.dags_test("xero_sync")
        assert first.returncode == 0, f"first run failed:\n{first.stdout[-6000:]}\n{first.stderr[-3000:]}"

        folders = [tmp_path / f"pg-reader-{n}" for n in range(3)]
        processes = []
        try:
            for folder in folders:
                folder.mkdir()
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", PG_READER, postgres_url, pg_schema, str(folder)],
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            for folder, process in zip(folders, processes, strict=True):
                for _ in range(600):
                    if (folder / "ready").exists() or process.poll() is not None:
                        break
                    time.sleep(0.1)
                assert (folder / "ready").exists(), process.stderr.read() if process.stderr else ""
            tenant_id = sb.tenants[0].tenant_id
            sb.update_invoice(tenant_id, Reference="while readers read")
            sb.void_invoice(tenant_id)
            second = airflow.dags_test("xero_sync")
            assert second.returncode == 0, (
                f"second run failed:\n{second.stdout[-6000:]}\n{second.stderr[-3000:]}"
            )
        finally:
            for folder in folders:
                (folder / "stop").touch()
            for process in processes:
                process.wait(timeout=60)
                if process.stderr:
                    process.stderr.close()
    for folder, process in zip(folders, processes, strict=True):
        assert process.returncode == 0
        report = json.loads((folder / "seen.json").read_text())
        assert report["queries"] > 1  # it kept querying through the run
        first_state, last_state = report["seen"][0], report["seen"][-1]
        assert first_state[0] == last_state[0] == sb.count(tenant_id, "invoices")  # nothing lost or doubled
        assert last_state[1] == first_state[1] + 1  # and it saw the run's change without reconnecting
        assert all(state[2] > 0 for state in report["seen"])  # the marts answered throughout
