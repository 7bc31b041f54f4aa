"""A throwaway local Airflow (SQLite metadata, this repository's dags/ and plugins/) for the demo and the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@dataclass
class LocalAirflow:
    """An Airflow home in ``home`` that runs DAGs in-process with ``airflow dags test``.

    :param home: the AIRFLOW_HOME directory (created if missing).
    :param env: extra environment: connections (``AIRFLOW_CONN_*``), ``XERO_*`` settings.
    """

    home: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        """Return the environment every Airflow command of this home runs with."""
        environ = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        }
        environ.update(self.env)
        return environ

    def command(self, *args: str) -> list[str]:
        """Return the command line of ``airflow <args>``."""
        return [AIRFLOW, *args]

    def run(self, *args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>``; output goes to ``log`` (appended) or is captured."""
        if log is None:
            return subprocess.run(
                [AIRFLOW, *args], env=self.environ(), capture_output=True, text=True, check=False
            )
        with log.open("a") as out:
            return subprocess.run(
                [AIRFLOW, *args],
                env=self.environ(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )

    def prepare(self, pool_slots: int = 1, log: Path | None = None) -> None:
        """Create or migrate the metadata database and the warehouse pool."""
        self.home.mkdir(parents=True, exist_ok=True)
        for args in (
            ("db", "migrate"),
            ("pools", "set", "xero_warehouse", str(pool_slots), "Warehouse writers"),
        ):
            result = self.run(*args, log=log)
            if result.returncode:
                raise RuntimeError(f"airflow {' '.join(args)} failed:\n{(result.stdout or '')[-3000:]}")

    def dags_test(self, dag_id: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run one DAG run in-process and return the finished command."""
        return self.run("dags", "test", dag_id, log=log)
