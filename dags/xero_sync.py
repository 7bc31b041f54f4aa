"""Scheduled incremental Xero sync: each tenant × entity goes extract → validate → load on its own, then marts.

A mapped task group runs one chain per tenant × entity, so a failure in one organisation or entity (a revoked
grant, a missing scope, too many bad records) never holds back the others: they load, the marts rebuild from what
loaded, and the summary names what failed and why, then fails the run so alerting sees it. A
teardown removes the run's work folders (and those killed runs left behind).

Configuration comes from the environment (read here, cheaply) and can be overridden per run through the DAG's
params. Nothing heavy is imported at parse time: the operators import their libraries when they run.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, dag, task, task_group

from xero.operators import (
    XeroExtractOperator,
    XeroLoadOperator,
    XeroMartsOperator,
    XeroPlanOperator,
    XeroSummaryOperator,
    XeroTransformOperator,
)

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
#: The warehouse pool serialises writers (DuckDB allows one writer process); give it more slots for Postgres.
WAREHOUSE_POOL = os.environ.get("XERO_WAREHOUSE_POOL", "xero_warehouse")
MARTS = Asset(name="xero_marts", uri="file://xero/marts")
CHAIN = "sync"


def _named(field: str) -> str:
    """Return the map-index template naming a chain's step by the entity and organisation in its input."""
    item = f"task.{field}"
    return f"{{{{ {item}['entity'] }}}} · {{{{ {item}['tenant_name'] or {item}['tenant_id'] }}}}"


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
        "xero_conn_id": Param(
            os.environ.get("XERO_CONN_ID", "xero_default"),
            type="string",
            title="Xero connection",
            description="The Airflow connection of type Xero to read from (client id, secret, tenants).",
        ),
        "warehouse_conn_id": Param(
            os.environ.get("XERO_WAREHOUSE_CONN_ID", "xero_warehouse"),
            type="string",
            title="Warehouse connection",
            description="The DuckDB or Postgres connection the tables, sync state and marts are written to.",
        ),
        "schema": Param(
            os.environ.get("XERO_SCHEMA", "xero"),
            type="string",
            title="Warehouse schema",
            description="Schema holding the Xero tables, _sync_state, _quarantine and the marts.",
        ),
        "data_dir": Param(
            os.environ.get("XERO_DATA_DIR", str(AIRFLOW_HOME / "data" / "xero")),
            type="string",
            title="Work folder",
            description="Where each run lands pages and typed files, and keeps the validation reports.",
        ),
        "max_bad_share": Param(
            float(os.environ.get("XERO_MAX_BAD_SHARE", "0.05")),
            type="number",
            minimum=0,
            maximum=1,
            title="Largest share of bad records",
            description=(
                "A tenant × entity fails when more than this share of its records is quarantined AND more "
                "than 'Largest number of bad records' are; below either, bad records are quarantined and the "
                "rest loads (0.05 = 5 %)."
            ),
        ),
        "max_bad_rows": Param(
            int(os.environ.get("XERO_MAX_BAD_ROWS", "10")),
            type="integer",
            minimum=0,
            title="Largest number of bad records",
            description=(
                "A tenant × entity with at most this many quarantined records never fails, whatever their "
                "share, so one odd record in a small batch is quarantined and the rest loads."
            ),
        ),
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

    @task_group(group_id=CHAIN)
    def sync(tenant_id: str, tenant_name: str | None, entity: str, modified_since: str | None) -> None:
        """One tenant × entity: extract → validate → load, independent of every other chain."""
        extracted = XeroExtractOperator(
            task_id="extract",
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            entity=entity,
            modified_since=modified_since,
            xero_conn_id="{{ params.xero_conn_id }}",
            data_dir="{{ params.data_dir }}",
            map_index_template="{{ task.entity }} · {{ task.tenant_name or task.tenant_id }}",
        )
        transformed = XeroTransformOperator(
            task_id="validate",
            extracted=extracted.output,
            max_bad_share="{{ params.max_bad_share }}",
            max_bad_rows="{{ params.max_bad_rows }}",
            map_index_template=_named("extracted"),
        )
        XeroLoadOperator(
            task_id="load",
            transformed=transformed.output,
            warehouse_conn_id="{{ params.warehouse_conn_id }}",
            schema="{{ params.schema }}",
            pool=WAREHOUSE_POOL,
            map_index_template=_named("transformed"),
        )

    chains = sync.expand_kwargs(targets.output)
    marts = XeroMartsOperator(
        task_id="marts",
        sql_dir=str(REPO / "sql"),
        warehouse_conn_id="{{ params.warehouse_conn_id }}",
        schema="{{ params.schema }}",
        load_task_id=f"{CHAIN}.load",
        pool=WAREHOUSE_POOL,
        outlets=[MARTS],
        trigger_rule="all_done",  # rebuild from whatever loaded, even when some chains failed
    )
    summary = XeroSummaryOperator(
        task_id="summary",
        plan_task_id="plan",
        chain_task_ids=[f"{CHAIN}.extract", f"{CHAIN}.validate", f"{CHAIN}.load"],
        trigger_rule="all_done",
        retries=0,
    )

    @task
    def clean_up(data_dir: str) -> dict:
        """Remove this run's work folders, and those earlier runs left behind (``XERO_WORK_RETENTION_HOURS``)."""
        from airflow.sdk import get_current_context

        from xero.cleanup import clean_up

        ti = get_current_context()["ti"]
        return clean_up(data_dir, ti.run_id, lambda run: ti.get_dagrun_state(ti.dag_id, run)).as_dict()

    chains >> marts >> summary
    summary >> clean_up("{{ params.data_dir }}").as_teardown()


xero_sync()
