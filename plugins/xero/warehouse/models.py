"""The SQL models of ``sql/``: their headers, their dependency order and the statements that build them.

A model file holds a header comment and one ``select``. The header is the model's documentation and its
build instructions, in this form::

    -- xero__cash_by_month: cash in and cash out per tenant, calendar month and currency.
    -- Any further description lines (the rule the model applies, what it leaves out).
    --
    -- Grain: one row per tenant_id, cash_month, currency_code
    -- Depends on: stg_xero__payment, stg_xero__invoice
    -- Kind: view
    --
    -- Columns:
    --   tenant_id      Xero organisation (tenant)
    --   cash_month     first day of the month of the payment date
    --                  (a description may continue on indented lines)

``Depends on`` names the models the select reads (``none`` for those that read only base tables); a
model that reads another model without declaring it is refused, so the declared order is the real one.
``Kind`` is ``view`` (the default) or ``table function (as_of date)``: a DuckDB table macro or a
PostgreSQL SQL function returning a table, called as ``select * from xero.name(DATE '2026-06-30')``.
Views use unqualified names (the warehouse schema is the session's schema when they are created, and a
view keeps it). A table function is bound when it is called, in the caller's context, so its select names
relations as ``{{ ref('name') }}``: on PostgreSQL the schema-qualified name, on DuckDB a ``query_table``
of the name qualified with the current database, so the macro works in a copy of the file too (DuckDB
resolves a macro's names in the database the caller has open, not in an attached one).
``{{ entity_rows }}`` expands to one select per registry entity (tenant, entity, rows, stale rows).
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xero.entities import Entity
from xero.warehouse.ddl import STALE_SINCE, Dialect, quote

#: A relation of the warehouse schema named in a table function: ``{{ ref('stg_xero__invoice') }}``.
REF_PLACEHOLDER = re.compile(r"\{\{\s*ref\(\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*\)\s*\}\}")
#: Placeholder for the per-entity row counts (see :func:`entity_rows_sql`).
ENTITY_ROWS_PLACEHOLDER = re.compile(r"\{\{\s*entity_rows\s*\}\}")
#: The column that marks a parent row whose newer version is quarantined (on every parent table).
STALE_COLUMN = STALE_SINCE

_TITLE = re.compile(r"\A([A-Za-z_][A-Za-z0-9_]*):\s*(.*)\Z")
_COLUMN = re.compile(r"\A  ([A-Za-z_][A-Za-z0-9_]*)\s+(\S.*)\Z")
_CONTINUATION = re.compile(r"\A {3,}(\S.*)\Z")
_TABLE_FUNCTION = re.compile(r"\Atable function\s*\((.*)\)\Z", re.IGNORECASE)
_PARAMETER = re.compile(r"\A([a-z_][a-z0-9_]*)\s+([a-z ]+)\Z", re.IGNORECASE)
_CREATE = re.compile(r"\bcreate\s+(or\s+replace\s+)?(view|table|macro|function)\b", re.IGNORECASE)


class ModelError(ValueError):
    """A model file is malformed or its dependencies do not add up (the message names the file)."""


@dataclass(frozen=True)
class Model:
    """One SQL model parsed from its file.

    :param name: the view or table function it builds (also the file's stem).
    :param summary: the first line of its description.
    :param description: the whole description (summary first).
    :param grain: what one row is.
    :param depends_on: the models its select reads.
    :param columns: column name → description, in output order.
    :param select: the model's select statement (placeholders not yet expanded).
    :param parameters: (name, SQL type) of a table function's parameters; empty for a view.
    :param path: the file it came from.
    """

    name: str
    summary: str
    description: str
    grain: str
    depends_on: tuple[str, ...]
    columns: dict[str, str]
    select: str
    parameters: tuple[tuple[str, str], ...] = ()
    path: Path = field(default=Path())

    @property
    def is_table_function(self) -> bool:
        """Return whether the model is a table function (else a view)."""
        return bool(self.parameters)

    @property
    def kind(self) -> str:
        """Return ``view`` or ``table function (name type, …)`` as the header states it."""
        if not self.parameters:
            return "view"
        return f"table function ({', '.join(f'{name} {type_}' for name, type_ in self.parameters)})"


def parse_model(path: Path) -> Model:
    """Parse one model file; raise :class:`ModelError` naming the file and what is wrong."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    header: list[str] = []
    for line in lines:
        if not line.startswith("--"):
            break
        header.append(line[3:] if line.startswith("-- ") else line[2:])
    select = "\n".join(lines[len(header) :]).strip().rstrip(";").strip()

    def fail(message: str) -> ModelError:
        return ModelError(f"{path.name}: {message}")

    if not header or not (title := _TITLE.match(header[0])):
        raise fail("the first line must be '-- <model name>: <summary>'")
    name, summary = title.group(1), title.group(2).strip()
    if name != path.stem:
        raise fail(f"the header names {name!r}, the file is {path.stem!r}: use one name")
    if not select.lower().startswith(("select", "with")):
        raise fail("after the header comes one select (… with …), the runner creates the view or function")
    if _CREATE.search(select):
        raise fail("write only the select: the runner creates the view or function from the header")
    description = [summary]
    fields: dict[str, str] = {}
    columns: dict[str, str] = {}
    in_columns = False
    last: str | None = None
    for line in header[1:]:
        if in_columns:
            if column := _COLUMN.match(line):
                last = column.group(1)
                if last in columns:
                    raise fail(f"column {last!r} is described twice")
                columns[last] = column.group(2).strip()
            elif (more := _CONTINUATION.match(line)) and last is not None:
                columns[last] += " " + more.group(1).strip()
            elif line.strip():
                raise fail(f"unexpected line in Columns: {line!r}")
            continue
        key, _, value = line.partition(":")
        if key in ("Grain", "Depends on", "Kind"):
            fields[key] = value.strip()
        elif line.strip() == "Columns:":
            in_columns = True
        elif line.strip():
            description.append(line.strip())
    for required in ("Grain", "Depends on"):
        if not fields.get(required):
            raise fail(f"the header needs a '-- {required}: …' line")
    if not columns:
        raise fail("the header needs a '-- Columns:' block describing every column")
    depends = fields["Depends on"]
    depends_on = (
        () if depends.lower() == "none" else tuple(d.strip() for d in depends.split(",") if d.strip())
    )
    return Model(
        name=name,
        summary=summary,
        description=" ".join(description),
        grain=fields["Grain"],
        depends_on=depends_on,
        columns=columns,
        select=select,
        parameters=_parameters(fields.get("Kind", "view"), path.name),
        path=path,
    )


def _parameters(kind: str, file_name: str) -> tuple[tuple[str, str], ...]:
    """Return the parameters a ``Kind`` line declares (none for a view)."""
    if kind.lower() == "view":
        return ()
    match = _TABLE_FUNCTION.match(kind)
    if not match:
        raise ModelError(
            f"{file_name}: unknown Kind {kind!r}: use 'view' or 'table function (<name> <type>, …)'"
        )
    parameters = []
    for part in match.group(1).split(","):
        parameter = _PARAMETER.match(part.strip())
        if not parameter:
            raise ModelError(f"{file_name}: table function parameter {part.strip()!r}: write '<name> <type>'")
        parameters.append((parameter.group(1), parameter.group(2).strip().lower()))
    return tuple(parameters)


def load_models(directory: Path) -> list[Model]:
    """Parse every ``*.sql`` model of ``directory`` and return them in dependency order.

    Models that do not depend on each other keep name order, so the order is stable. Raises
    :class:`ModelError` on an unknown or undeclared dependency, or a cycle.
    """
    models = {model.name: model for model in map(parse_model, sorted(Path(directory).glob("*.sql")))}
    for model in models.values():
        unknown = [name for name in model.depends_on if name not in models]
        if unknown:
            raise ModelError(f"{model.path.name}: depends on unknown models {', '.join(unknown)}")
        read = referenced_models(model.select, models, exclude=model.name)
        undeclared = sorted(read - set(model.depends_on))
        if undeclared:
            raise ModelError(
                f"{model.path.name}: reads {', '.join(undeclared)} but does not list it under 'Depends on'"
            )
    sorter = graphlib.TopologicalSorter({name: models[name].depends_on for name in sorted(models)})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise ModelError(f"models depend on each other in a cycle: {' -> '.join(exc.args[1])}") from None
    ordered: list[Model] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.extend(models[name] for name in ready)
        sorter.done(*ready)
    return ordered


def referenced_models(select: str, names: Iterable[str], exclude: str = "") -> set[str]:
    """Return which of ``names`` the SQL ``select`` mentions as whole words (comments ignored)."""
    code = re.sub(r"--[^\n]*", "", select)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    return {name for name in names if name in words and name != exclude}


def entity_rows_sql(entities: Sequence[Entity], existing: dict[str, set[str]]) -> str:
    """Return one ``select`` per entity whose table exists: tenant, entity, rows and stale rows, unioned.

    ``stale_rows`` counts rows with :data:`STALE_COLUMN` set where the table has that column, else 0.
    """
    selects = []
    for entity in entities:
        table = entity.table.name
        if table not in existing:
            continue
        stale = f"count({quote(STALE_COLUMN)})" if STALE_COLUMN in existing[table] else "cast(0 as bigint)"
        selects.append(
            f"select tenant_id, cast('{entity.name}' as text) as entity, count(*) as rows_in_table, "
            f"{stale} as stale_rows from {quote(table)} group by tenant_id"
        )
    if not selects:
        return (
            "select cast(null as text) as tenant_id, cast(null as text) as entity, "
            "cast(0 as bigint) as rows_in_table, cast(0 as bigint) as stale_rows where false"
        )
    return "\nunion all\n".join(selects)


def ref_sql(dialect: Dialect, schema: str, name: str, qualify: bool) -> str:
    """Return how a model names relation ``name`` of ``schema`` (see the module's notes on ``ref``).

    :param qualify: the name is read where the warehouse schema is not the current one (a table function).
    """
    if not qualify:
        return quote(name)
    if dialect == "postgres":
        return f"{quote(schema)}.{quote(name)}"
    path = f'"{schema}"."{name}"'.replace("'", "''")
    return f"query_table('\"' || replace(current_database(), '\"', '\"\"') || '\".{path}')"


def render_select(model: Model, dialect: Dialect, schema: str, entity_rows: str = "") -> str:
    """Return the model's select with its placeholders expanded.

    :param entity_rows: SQL for ``{{ entity_rows }}`` (see :func:`entity_rows_sql`).
    """
    select = REF_PLACEHOLDER.sub(
        lambda match: ref_sql(dialect, schema, match.group(1), model.is_table_function), model.select
    )
    return ENTITY_ROWS_PLACEHOLDER.sub(lambda _: entity_rows, select)


__all__ = [
    "Model",
    "ModelError",
    "entity_rows_sql",
    "load_models",
    "parse_model",
    "referenced_models",
    "render_select",
]
