"""Thin Airflow operators over :mod:`xero.pipeline`: one per step of a sync.

They hold their arguments as given (templated where useful), do no I/O in ``__init__`` and return only small
metadata for XCom; the data itself moves through files under ``data_dir``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseOperator

from xero import pipeline, summary
from xero.links import XeroDataDocsLink

if TYPE_CHECKING:
    from airflow.sdk import XComArg

_Execute = TypeVar("_Execute", bound=Callable[..., Any])


def fail_fast(execute: _Execute) -> _Execute:
    """Fail the task at once, without retries, on an error that cannot fix itself.

    A :class:`~xero.exceptions.XeroError` marked ``permanent`` (a wrong secret, a lost grant, a missing
    scope, a disconnected tenant, an unreachable or wrong URL, a bad warehouse connection) becomes
    Airflow's ``AirflowFailException`` with the same message, which names the connection and the setting to
    fix; every other error keeps the task's retries.
    """

    @functools.wraps(execute)
    def run(self: BaseOperator, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from xero.exceptions import XeroError

        try:
            return execute(self, context)
        except XeroError as exc:
            if not exc.permanent:
                raise
            raise AirflowFailException(f"{exc} (not retried: fix the setting, then clear the task)") from exc

    return run  # type: ignore[return-value]


@contextmanager
def reporting_failure(context: Any, step: str, target: Mapping[str, Any]) -> Iterator[None]:
    """Push what failed and why (XCom key :data:`xero.summary.FAILURE_KEY`) before an error fails the task.

    The run's summary reads these records to name each failed tenant × entity with its error. A reschedule
    is no failure and is not recorded; a retry that succeeds clears the record (Airflow clears a task's
    XComs when it starts again).
    """
    from airflow.sdk.exceptions import AirflowRescheduleException

    try:
        yield
    except AirflowRescheduleException:
        raise
    except Exception as exc:
        if context.get("ti") is not None:
            context["ti"].xcom_push(key=summary.FAILURE_KEY, value=summary.failure_record(step, target, exc))
        raise


class XeroPlanOperator(BaseOperator):
    """List the tenants, prepare the warehouse, and return one target per tenant × entity.

    :param xero_conn_id: the Xero connection.
    :param warehouse_conn_id: the warehouse connection (DuckDB or Postgres).
    :param schema: the warehouse schema.
    :param entities: entity names to sync (default: all in the registry).
    """

    template_fields: Sequence[str] = ("xero_conn_id", "warehouse_conn_id", "schema", "entities")

    def __init__(
        self,
        *,
        xero_conn_id: str = "xero_default",
        warehouse_conn_id: str = "xero_warehouse",
        schema: str = "xero",
        entities: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.xero_conn_id = xero_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.schema = schema
        self.entities = entities

    @fail_fast
    def execute(self, context: Any) -> list[dict[str, Any]]:
        with reporting_failure(context, "plan", {}):
            return pipeline.plan(self.xero_conn_id, self.warehouse_conn_id, self.schema, self.entities)


class XeroExtractOperator(BaseOperator):
    """Read one entity of one tenant, changed since ``modified_since``, into landing files.

    Two Xero conditions end the task without hours of retries. A spent daily call limit ends it
    successfully with a warning: the pages read so far are committed downstream and the result says
    ``stopped: "daily limit reached, resumes after <time>"``. 503 "The Organisation is offline" gives the
    worker slot back at once and reschedules the task ``offline_reschedule_seconds`` later (state
    ``up_for_reschedule``, which spends no retry), at most ``offline_max_reschedules`` times; after that it
    fails into the task's ordinary retries.

    :param tenant_id: the Xero organisation.
    :param entity: the entity name (``invoices``…).
    :param modified_since: ISO timestamp of the committed watermark, or None for a full read.
    :param data_dir: where the run's files go.
    :param tenant_name: the organisation's name, for logs and the UI.
    :param offline_reschedule_seconds: how long to wait for an offline organisation (Xero: "5 mins or so").
    :param offline_max_reschedules: reschedules for an offline organisation before failing.
    """

    template_fields: Sequence[str] = (
        "tenant_id",
        "tenant_name",
        "entity",
        "modified_since",
        "data_dir",
        "xero_conn_id",
    )

    def __init__(
        self,
        *,
        tenant_id: str,
        entity: str,
        data_dir: str,
        modified_since: str | None = None,
        tenant_name: str | None = None,
        xero_conn_id: str = "xero_default",
        offline_reschedule_seconds: float = 300.0,
        offline_max_reschedules: int = 12,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self.entity = entity
        self.modified_since = modified_since
        self.data_dir = data_dir
        self.tenant_name = tenant_name
        self.xero_conn_id = xero_conn_id
        self.offline_reschedule_seconds = offline_reschedule_seconds
        self.offline_max_reschedules = offline_max_reschedules

    @fail_fast
    def execute(self, context: Any) -> dict[str, Any]:
        target = {"tenant_id": self.tenant_id, "tenant_name": self.tenant_name, "entity": self.entity}
        with reporting_failure(context, "extract", target):
            return self._extract(context)

    def _extract(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowRescheduleException

        from xero.exceptions import XeroOrganisationOffline

        try:
            result = pipeline.extract(
                self.xero_conn_id,
                self.tenant_id,
                self.entity,
                self.modified_since,
                self.data_dir,
                context["run_id"],
                tenant_name=self.tenant_name,
            )
        except XeroOrganisationOffline as exc:
            count = int(context.get("task_reschedule_count", 0) or 0)
            if count >= self.offline_max_reschedules:
                raise
            when = datetime.now(UTC) + timedelta(seconds=self.offline_reschedule_seconds)
            self.log.warning(
                "%s; rescheduling for %s UTC (%d of at most %d)",
                exc,
                f"{when:%H:%M:%S}",
                count + 1,
                self.offline_max_reschedules,
            )
            raise AirflowRescheduleException(reschedule_date=when) from exc
        if result.get("stopped"):
            self.log.warning(
                "Xero %s for %s: %s; %d records read so far are committed",
                self.entity,
                self.tenant_name or self.tenant_id,
                result["stopped"],
                result["records"],
            )
        return result


class XeroTransformOperator(BaseOperator):
    """Normalise and validate what one extract landed; failing rows go to quarantine.

    Its "Data Docs" link opens the validation's report (:mod:`xero.datadocs`), served by the api-server.

    The step fails only when more than ``max_bad_share`` of the records AND more than ``max_bad_rows``
    records are bad, so one odd record in a small batch is quarantined and the rest loads.

    :param extracted: the extract step's result (an XCom reference in a DAG).
    :param max_bad_share: largest allowed share of quarantined records.
    :param max_bad_rows: quarantined records always allowed, whatever their share.
    """

    template_fields: Sequence[str] = ("extracted", "max_bad_share", "max_bad_rows")
    operator_extra_links = (XeroDataDocsLink(),)

    def __init__(
        self,
        *,
        extracted: dict[str, Any] | XComArg,
        max_bad_share: float | str = pipeline.DEFAULT_MAX_BAD_SHARE,
        max_bad_rows: int | str = pipeline.DEFAULT_MAX_BAD_ROWS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.extracted: dict[str, Any] = extracted  # type: ignore[assignment]  # resolved when rendered
        self.max_bad_share = max_bad_share
        self.max_bad_rows = max_bad_rows

    @fail_fast
    def execute(self, context: Any) -> dict[str, Any]:
        with reporting_failure(context, "validate", self.extracted):
            return pipeline.transform(
                self.extracted, max_bad_share=float(self.max_bad_share), max_bad_rows=int(self.max_bad_rows)
            )


class XeroLoadOperator(BaseOperator):
    """Merge one tenant × entity into the warehouse and advance its watermark in the same transaction.

    :param transformed: the transform step's result (an XCom reference in a DAG).
    :param warehouse_conn_id: the warehouse connection.
    :param schema: the warehouse schema.
    """

    template_fields: Sequence[str] = ("transformed", "warehouse_conn_id", "schema")

    def __init__(
        self,
        *,
        transformed: dict[str, Any] | XComArg,
        warehouse_conn_id: str = "xero_warehouse",
        schema: str = "xero",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transformed: dict[str, Any] = transformed  # type: ignore[assignment]  # resolved when rendered
        self.warehouse_conn_id = warehouse_conn_id
        self.schema = schema

    @fail_fast
    def execute(self, context: Any) -> dict[str, Any]:
        with reporting_failure(context, "load", self.transformed):
            return pipeline.load(self.transformed, self.warehouse_conn_id, self.schema, context["run_id"])


class XeroMartsOperator(BaseOperator):
    """Rebuild the staging views and dashboard marts from the SQL files in ``sql_dir``.

    Each outlet's Asset event carries what changed in its extra: rows written per table by the run's loads
    (read from the XComs of ``load_task_id``) and how many tenant × entity loads committed.

    :param sql_dir: folder of ``*.sql`` files, run in name order.
    :param warehouse_conn_id: the warehouse connection.
    :param schema: the warehouse schema.
    :param load_task_id: the (mapped) load task whose results say what changed.
    """

    template_fields: Sequence[str] = ("sql_dir", "warehouse_conn_id", "schema")

    def __init__(
        self,
        *,
        sql_dir: str,
        warehouse_conn_id: str = "xero_warehouse",
        schema: str = "xero",
        load_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql_dir = sql_dir
        self.warehouse_conn_id = warehouse_conn_id
        self.schema = schema
        self.load_task_id = load_task_id

    @fail_fast
    def execute(self, context: Any) -> None:
        with reporting_failure(context, "marts", {}):
            pipeline.build_marts(self.warehouse_conn_id, self.schema, self.sql_dir)
        if self.load_task_id:
            extra = summary.changes(_pull_all(context, self.load_task_id))
            for outlet in self.outlets:
                context["outlet_events"][outlet].extra = extra
            self.log.info("Rows written per table: %s", extra["rows_changed"] or "none")


def _pull_all(context: Any, task_id: str, key: str = "return_value") -> list[Any]:
    """Return the XCom values of every map index of ``task_id`` in this run (none for a task that failed)."""
    values = context["ti"].xcom_pull(task_ids=[task_id], key=key)
    return [value for value in values or [] if value is not None]


class XeroSummaryOperator(BaseOperator):
    """Log the run as a table (tenant, entity, read, loaded, quarantined, stale, calls, state) and fail it when
    any tenant × entity failed, naming each with its error, so the run's state drives alerting.

    Runs whatever the upstream state (give it ``trigger_rule="all_done"``). It reads the plan's targets, the
    extract and load results and the failure records of ``chain_task_ids`` from XCom, and the states of the
    run's tasks, so a chain killed before it could record its error is still reported.

    :param plan_task_id: the task that returned the targets.
    :param chain_task_ids: the steps of one chain in order (extract, validate, load), each mapped per target.
    """

    template_fields: Sequence[str] = ()

    def __init__(
        self,
        *,
        plan_task_id: str = "plan",
        chain_task_ids: Sequence[str] = ("sync.extract", "sync.validate", "sync.load"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.chain_task_ids = list(chain_task_ids)

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        plans = _pull_all(context, self.plan_task_id)
        reporting = dict.fromkeys([self.plan_task_id, *self.chain_task_ids, *sorted(self.upstream_task_ids)])
        report = summary.summarize(
            _pull_all(context, self.chain_task_ids[-1]),
            targets=plans[0] if plans else None,
            extracted=_pull_all(context, self.chain_task_ids[0]),
            failures=[
                failure
                for task_id in reporting
                for failure in _pull_all(context, task_id, summary.FAILURE_KEY)
            ],
            states={key: value for key, value in states.items() if key != self.task_id},
            chain_task_ids=self.chain_task_ids,
        )
        self.log.info("Xero sync of run %s:\n%s", ti.run_id, report["table"])
        summary.raise_for_failures(report)
        return report
