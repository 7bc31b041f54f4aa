"""Scheduled incremental Xero sync: tenants × entities → extract → validate → load → marts, then clean-up.

Configuration comes from the environment (read here, cheaply) and can be overridden per run through the DAG's
params. Nothing heavy is imported at parse time: the operators import their libraries when they run.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, dag, task

from xero.operators import (
    XeroExtractOperator,
    XeroLoadOperator,
    XeroMartsOperator,
    XeroPlanOperator,
    XeroTransformOperator,
)

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
#: The warehouse pool serialises writers (DuckDB allows one writer process); give it more slots for Postgres.
WAREHOUSE_POOL = os.environ.get("XERO_WAREHOUSE_POOL", "xero_warehouse")
MARTS = Asset(name="xero_marts", uri="file://xero/marts")


@dag(
    dag_id="xero_sync",
    schedule=os.environ.get("XERO_SYNC_SCHEDULE", "@hourly"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["xero"],
    default_args={
        "retries": int(os.environ.get("XERO_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
    },
    params={
        "xero_conn_id": Param(os.environ.get("XERO_CONN_ID", "xero_default"), type="string"),
        "warehouse_conn_id": Param(os.environ.get("XERO_WAREHOUSE_CONN_ID", "xero_warehouse"), type="string"),
        "schema": Param(os.environ.get("XERO_SCHEMA", "xero"), type="string"),
        "data_dir": Param(
            os.environ.get("XERO_DATA_DIR", str(AIRFLOW_HOME / "data" / "xero")), type="string"
        ),
        "max_bad_share": Param(float(os.environ.get("XERO_MAX_BAD_SHARE", "0.05")), type="number"),
    },
    doc_md=__doc__,
)
def xero_sync() -> None:
    targets = XeroPlanOperator(
        task_id="plan",
        xero_conn_id="{{ params.xero_conn_id }}",
        warehouse_conn_id="{{ params.warehouse_conn_id }}",
        schema="{{ params.schema }}",
        pool=WAREHOUSE_POOL,
    )
    extracted = XeroExtractOperator.partial(
        task_id="extract",
        xero_conn_id="{{ params.xero_conn_id }}",
        data_dir="{{ params.data_dir }}",
        map_index_template="{{ task.entity }} · {{ task.tenant_name or task.tenant_id }}",
    ).expand_kwargs(targets.output)
    transformed = XeroTransformOperator.partial(
        task_id="validate",
        max_bad_share="{{ params.max_bad_share }}",
        map_index_template="{{ task.extracted['entity'] }} · {{ task.extracted['tenant_name'] }}",
    ).expand(extracted=extracted.output)
    loaded = XeroLoadOperator.partial(
        task_id="load",
        warehouse_conn_id="{{ params.warehouse_conn_id }}",
        schema="{{ params.schema }}",
        pool=WAREHOUSE_POOL,
        map_index_template="{{ task.transformed['entity'] }} · {{ task.transformed['tenant_name'] }}",
    ).expand(transformed=transformed.output)
    marts = XeroMartsOperator(
        task_id="marts",
        sql_dir=str(REPO / "sql"),
        warehouse_conn_id="{{ params.warehouse_conn_id }}",
        schema="{{ params.schema }}",
        pool=WAREHOUSE_POOL,
        outlets=[MARTS],
    )

    @task
    def summary(results: list[dict]) -> dict:
        """Log what the run did per tenant and entity."""
        from xero.pipeline import summarize

        return summarize(results)

    @task
    def clean_up(data_dir: str) -> dict:
        """Remove this run's work folders, and those earlier runs left behind (``XERO_WORK_RETENTION_HOURS``)."""
        from airflow.sdk import get_current_context

        from xero.cleanup import clean_up

        ti = get_current_context()["ti"]
        return clean_up(data_dir, ti.run_id, lambda run: ti.get_dagrun_state(ti.dag_id, run)).as_dict()

    loaded >> marts
    summarized = summary(loaded.output)  # type: ignore[arg-type]  # an XComArg, resolved to the list at run time
    [marts, summarized] >> clean_up("{{ params.data_dir }}").as_teardown()


xero_sync()
