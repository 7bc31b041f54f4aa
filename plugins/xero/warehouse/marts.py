"""Build the SQL models of ``sql/`` in the warehouse: drop, create in dependency order, comment.

The models (see :mod:`xero.warehouse.models`) are rebuilt in one transaction, so readers never see a
half-built set: the views and table functions they define are dropped in reverse dependency order (and
views left by models that no longer exist, in the ``stg_xero__`` and ``xero__`` namespaces the models own),
then created in dependency order, then described with ``COMMENT ON`` from their headers. A view is a
``CREATE VIEW``; a table function is a DuckDB table macro or a PostgreSQL SQL function whose result
columns are typed by a probe of its select.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from xero.entities import Entity
from xero.warehouse.base import Session
from xero.warehouse.ddl import Dialect, quote
from xero.warehouse.dictionary import comment_statements, model_comments
from xero.warehouse.models import Model, entity_rows_sql, render_select

log = logging.getLogger(__name__)

#: Name patterns (SQL ``LIKE``) of the views the models own: one left behind by a removed model is dropped.
OWNED_VIEW_PATTERNS = ("stg\\_xero\\_\\_%", "xero\\_\\_%")


def build_models(
    session: Session, dialect: Dialect, schema: str, models: Sequence[Model], entities: Sequence[Entity]
) -> list[str]:
    """Drop and recreate ``models`` (already in dependency order) in ``schema``; return their names.

    The session's current schema must be ``schema`` (``Backend.use_schema``).
    """
    existing = _existing_columns(session, schema)
    entity_rows = entity_rows_sql(entities, existing)
    names = {model.name for model in models}
    for retired in _owned_views(session, schema) - names:
        log.info("Dropping view %s: no model in sql/ defines it any more", retired)
        session.execute(f"DROP VIEW IF EXISTS {quote(retired)}")
    for model in reversed(models):
        session.execute(_drop_sql(dialect, model))
    for model in models:
        log.info("Building model %s (%s)", model.name, model.kind)
        select = render_select(model, dialect, schema, entity_rows)
        session.execute(_create_sql(session, dialect, model, select))
    for model in models:
        for statement in comment_statements(dialect, model_comments(model), _signature(model)):
            session.execute(statement)
    return [model.name for model in models]


def _existing_columns(session: Session, schema: str) -> dict[str, set[str]]:
    existing: dict[str, set[str]] = {}
    for table, column in session.query(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?", (schema,)
    ):
        existing.setdefault(table, set()).add(column)
    return existing


def _owned_views(session: Session, schema: str) -> set[str]:
    likes = " OR ".join("table_name LIKE ? ESCAPE '\\'" for _ in OWNED_VIEW_PATTERNS)
    rows = session.query(
        f"SELECT table_name FROM information_schema.views WHERE table_schema = ? AND ({likes})",
        (schema, *OWNED_VIEW_PATTERNS),
    )
    return {row[0] for row in rows}


def _signature(model: Model) -> str:
    """Return the argument types of a table function, as PostgreSQL names the function (``(date)``)."""
    return "(" + ", ".join(type_ for _, type_ in model.parameters) + ")"


def _drop_sql(dialect: Dialect, model: Model) -> str:
    if not model.is_table_function:
        return f"DROP VIEW IF EXISTS {quote(model.name)}"
    if dialect == "duckdb":
        return f"DROP MACRO TABLE IF EXISTS {quote(model.name)}"
    return f"DROP FUNCTION IF EXISTS {quote(model.name)}{_signature(model)}"


def _create_sql(session: Session, dialect: Dialect, model: Model, select: str) -> str:
    name = quote(model.name)
    if not model.is_table_function:
        return f"CREATE VIEW {name} AS\n{select}"
    if dialect == "duckdb":
        parameters = ", ".join(parameter for parameter, _ in model.parameters)
        return f"CREATE MACRO {name}({parameters}) AS TABLE\n{select}"
    columns = ", ".join(
        f"{quote(column)} {type_}" for column, type_ in _probe_columns(session, model, select)
    )
    parameters = ", ".join(f"{parameter} {type_}" for parameter, type_ in model.parameters)
    return (
        f"CREATE FUNCTION {name}({parameters}) RETURNS TABLE ({columns}) LANGUAGE sql STABLE AS $xero_model$\n"
        f"{select}\n$xero_model$"
    )


def _probe_columns(session: Session, model: Model, select: str) -> list[tuple[str, str]]:
    """Return the output columns of a PostgreSQL table function's select and their types.

    The select is created as a temporary view with each parameter replaced by a typed NULL, and the
    view's columns are read from the catalog.
    """
    probe = select
    for parameter, type_ in model.parameters:
        probe = re.sub(rf"\b{re.escape(parameter)}\b", f"cast(null as {type_})", probe)
    view = f"_xero_probe_{model.name}"
    session.execute(f"CREATE TEMPORARY VIEW {quote(view)} AS\n{probe}")
    rows = session.query(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (quote(view),),
    )
    session.execute(f"DROP VIEW {quote(view)}")
    return [(str(column), str(type_)) for column, type_ in rows]


__all__ = ["OWNED_VIEW_PATTERNS", "build_models"]
