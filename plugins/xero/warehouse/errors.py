"""Why a warehouse connection cannot be opened, in the words of the Airflow connection to fix.

Driver errors raised while looking up or opening the warehouse connection (a connection id that does not
exist, PostgreSQL that does not answer or refuses the login, a DuckDB path whose folder is missing or
not writable) become :class:`~xero.exceptions.XeroWarehouseError` naming the connection id and the
setting to change; they are permanent, so the task fails at once. A DuckDB file locked by another
writer is the one failure that passes by itself: it is reported the same way but left to Airflow's
retries.
"""

from __future__ import annotations

import re
from typing import Any

from xero.exceptions import XeroWarehouseError

#: Characters of the driver's own message kept as context (its first line only).
_DRIVER_MESSAGE_CHARS = 200


def _driver_message(exc: BaseException) -> str:
    """Return the first line of a driver error, any ``password=…`` or URL credentials removed."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return f"{type(exc).__name__}: {text[:_DRIVER_MESSAGE_CHARS]}"


def missing_connection(conn_id: str) -> XeroWarehouseError:
    """Return the error of a warehouse connection id that Airflow does not know."""
    return XeroWarehouseError(
        f"Xero warehouse connection {conn_id!r} is not defined: create it (type duckdb with the database "
        "file as host, or postgres), or point XERO_WAREHOUSE_CONN_ID at an existing one",
        conn_id=conn_id,
    )


def unsupported_type(conn_id: str, conn_type: str | None) -> XeroWarehouseError:
    """Return the error of a warehouse connection of a type the warehouse cannot load."""
    return XeroWarehouseError(
        f"Xero warehouse connection {conn_id!r} has type {conn_type!r}: set its type to duckdb or postgres",
        conn_id=conn_id,
    )


def open_failed(conn_id: str, dialect: str, hook: Any, exc: BaseException) -> XeroWarehouseError:
    """Return the error of a warehouse connection that could not be opened.

    :param conn_id: the warehouse connection id.
    :param dialect: ``duckdb`` or ``postgres``.
    :param hook: the common-sql hook that failed to connect (for the database it points at).
    :param exc: what the driver raised.
    """
    said = _driver_message(exc)
    if dialect == "duckdb":
        database = _duckdb_database(hook)
        if "lock" in str(exc).lower():
            error = XeroWarehouseError(
                f"Xero warehouse connection {conn_id!r}: the DuckDB file {database!r} is locked by another "
                f"process ({said}); DuckDB allows one writer: give the xero_warehouse pool one slot and "
                "close other sessions on the file",
                conn_id=conn_id,
            )
            error.permanent = False
            return error
        return XeroWarehouseError(
            f"Xero warehouse connection {conn_id!r}: cannot open the DuckDB file {database!r} ({said}); "
            "fix the connection's host (the database file path): its folder must exist and the file and "
            "folder must be writable by the Airflow worker",
            conn_id=conn_id,
        )
    target = _postgres_target(hook)
    return XeroWarehouseError(
        f"Xero warehouse connection {conn_id!r}: cannot connect to PostgreSQL at {target} ({said}); "
        "fix the connection's host, port, login, password or schema (the database), and check that the "
        "server is up and reachable from the worker",
        conn_id=conn_id,
    )


def _duckdb_database(hook: Any) -> str:
    try:
        return str(hook.get_database())
    except Exception:  # the path itself may be what is wrong
        return "?"


def _postgres_target(hook: Any) -> str:
    try:
        conn = hook.get_connection(hook.get_conn_id())
    except Exception:
        return "?"
    return f"{conn.host or 'localhost'}:{conn.port or 5432}/{conn.schema or ''}"
