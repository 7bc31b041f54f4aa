"""The warehouse: typed Xero tables, sync state and quarantine in DuckDB or PostgreSQL.

Public API: :class:`Warehouse` (``from_conn_id``, ``ensure_schema``, ``get_watermarks``, ``load``,
``run_sql_dir``, ``table_counts``) and :class:`LoadResult`. Built on Airflow's common-sql hooks
(the official DuckDBHook and PostgresHook), chosen by the warehouse connection's type.
"""

from __future__ import annotations

from xero.warehouse.loader import LoadResult, Warehouse

__all__ = ["LoadResult", "Warehouse"]
