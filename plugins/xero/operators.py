"""Thin Airflow operators over :mod:`xero.pipeline`: one per step of a sync.

They hold their arguments as given (templated where useful), do no I/O in ``__init__`` and return only small
metadata for XCom; the data itself moves through files under ``data_dir``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from airflow.sdk import BaseOperator

from xero import pipeline
from xero.links import XeroDataDocsLink

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

    template_fields: Sequence[str] = ("tenant_id", "entity", "modified_since", "data_dir", "xero_conn_id")

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

    :param extracted: the extract step's result.
    :param max_bad_share: fail when a larger share of records is bad.
    """

    template_fields: Sequence[str] = ("max_bad_share",)
    operator_extra_links = (XeroDataDocsLink(),)

    def __init__(
        self,
        *,
        extracted: dict[str, Any],
        max_bad_share: float = pipeline.DEFAULT_MAX_BAD_SHARE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.extracted = extracted
        self.max_bad_share = max_bad_share

    @fail_fast
    def execute(self, context: Any) -> dict[str, Any]:
        return pipeline.transform(self.extracted, max_bad_share=float(self.max_bad_share))


class XeroLoadOperator(BaseOperator):
    """Merge one tenant × entity into the warehouse and advance its watermark in the same transaction.

    :param transformed: the transform step's result.
    :param warehouse_conn_id: the warehouse connection.
    :param schema: the warehouse schema.
    """

    template_fields: Sequence[str] = ("warehouse_conn_id", "schema")

    def __init__(
        self,
        *,
        transformed: dict[str, Any],
        warehouse_conn_id: str = "xero_warehouse",
        schema: str = "xero",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transformed = transformed
        self.warehouse_conn_id = warehouse_conn_id
        self.schema = schema

    @fail_fast
    def execute(self, context: Any) -> dict[str, Any]:
        return pipeline.load(self.transformed, self.warehouse_conn_id, self.schema, context["run_id"])


class XeroMartsOperator(BaseOperator):
    """Rebuild the staging views and dashboard marts from the SQL files in ``sql_dir``.

    :param sql_dir: folder of ``*.sql`` files, run in name order.
    :param warehouse_conn_id: the warehouse connection.
    :param schema: the warehouse schema.
    """

    template_fields: Sequence[str] = ("sql_dir", "warehouse_conn_id", "schema")

    def __init__(
        self,
        *,
        sql_dir: str,
        warehouse_conn_id: str = "xero_warehouse",
        schema: str = "xero",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql_dir = sql_dir
        self.warehouse_conn_id = warehouse_conn_id
        self.schema = schema

    @fail_fast
    def execute(self, context: Any) -> None:
        pipeline.build_marts(self.warehouse_conn_id, self.schema, self.sql_dir)
