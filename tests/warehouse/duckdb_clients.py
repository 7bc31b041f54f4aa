"""Other DuckDB clients for the read-copy tests: released DuckDB 1.x packages and reader processes.

:func:`duckdb_client` installs ``duckdb==<version>`` from the package registry once into the repository's
git-ignored ``.venv-duckdb1/<version>/`` (``pip install --target``) and returns a command running Python
against it alone, so a test opens a file with a real DuckDB 1.x, in a process of its own. :data:`DUMP`
is the script such a process runs to read every table, view and table macro of a file as JSON lines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLIENTS = REPO / ".venv-duckdb1"
#: The oldest DuckDB release that reads the read copy, and the newest 1.x release.
OLDEST_READER = "1.2.2"
NEWEST_1X = "1.5.6"
#: The date every table macro is called with (one argument per parameter).
AS_OF = "2026-06-30"

#: Reads every table and view (rows as JSON text, sorted) and calls every table macro of ``argv[1]``;
#: prints ``{"version": …, "relations": {name: [rows]}}``. Text only: no client-side type conversions.
DUMP = r"""
import json, sys
import duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
conn.execute("SET TimeZone = 'UTC'")
as_of = sys.argv[2]
relations = {}
catalog = conn.execute("SELECT current_database()").fetchone()[0]
names = conn.execute(
    "SELECT schema_name, table_name, 0 FROM duckdb_tables() WHERE database_name = $1 AND NOT internal "
    "UNION ALL SELECT schema_name, view_name, 0 FROM duckdb_views() WHERE database_name = $1 AND NOT internal "
    "UNION ALL SELECT DISTINCT schema_name, function_name, len(parameters) FROM duckdb_functions() "
    "WHERE database_name = $1 AND NOT internal AND function_type = 'table_macro' ORDER BY ALL",
    [catalog],
).fetchall()
for schema, name, params in names:
    args = "(" + ", ".join([f"DATE '{as_of}'"] * params) + ")" if params else ""
    relation = f'"{catalog}"."{schema}"."{name}"{args}'
    rows = conn.execute(f"SELECT CAST(to_json(t) AS VARCHAR) FROM {relation} AS t").fetchall()
    relations[f"{schema}.{name}{'()' if params else ''}"] = sorted(row[0] for row in rows)
comments = conn.execute(
    "SELECT table_name || '.' || column_name, comment FROM duckdb_columns() WHERE database_name = $1 "
    "AND comment IS NOT NULL "
    "UNION ALL SELECT table_name, comment FROM duckdb_tables() WHERE database_name = $1 AND comment IS NOT NULL "
    "UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE database_name = $1 AND comment IS NOT NULL "
    "ORDER BY ALL",
    [catalog],
).fetchall()
print(json.dumps({"version": duckdb.__version__, "relations": relations, "comments": [list(c) for c in comments]}))
"""


def duckdb_client(version: str) -> list[str]:
    """Return the command running Python with ``duckdb==version`` (installed on first use) and nothing else.

    Python's own site-packages are left out (``-S``), so the project's DuckDB cannot shadow the client.
    """
    target = CLIENTS / version
    if not (target / "duckdb").is_dir():
        CLIENTS.mkdir(exist_ok=True)
        staging = CLIENTS / f".{version}.{uuid.uuid4().hex}"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(staging),
                f"duckdb=={version}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"could not install duckdb=={version} from the package registry:\n{result.stderr}"
            )
        try:
            os.rename(staging, target)  # atomic: parallel test workers install at most once each
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another worker was first
    return [
        sys.executable,
        "-S",
        "-c",
        f"import sys; sys.path.insert(0, {str(target)!r}); exec(sys.argv.pop(1))",
    ]


def dump(command: list[str], database: Path, as_of: str = AS_OF) -> dict[str, Any]:
    """Run :data:`DUMP` on ``database`` with the client ``command``; return what it read."""
    result = subprocess.run(
        [*command, DUMP, str(database), as_of], capture_output=True, text=True, check=False, timeout=300
    )
    if result.returncode:
        raise AssertionError(f"{command[0]} could not read {database}:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout))


def current_client() -> list[str]:
    """Return the command running this project's Python (and its DuckDB) like :func:`duckdb_client` does."""
    return [sys.executable, "-c", "import sys; exec(sys.argv.pop(1))"]
