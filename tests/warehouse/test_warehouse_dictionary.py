"""The data dictionary: every table, view and column described once, in the database and in sql/README.md."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xero.__main__ import data_dictionary, main
from xero.entities import ENTITIES, INVOICES, ORGANISATION
from xero.warehouse import Warehouse
from xero.warehouse.ddl import build_metadata
from xero.warehouse.dictionary import BEGIN_MARKER, END_MARKER, apply_table_comments, replace_section
from xero.warehouse.models import load_models

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
README = SQL_DIR / "README.md"


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_every_base_table_and_column_is_described(dialect: str) -> None:
    metadata = build_metadata(ENTITIES.values(), dialect)  # type: ignore[arg-type]
    missing = [table.name for table in metadata.tables.values() if not table.comment]
    missing += [
        f"{table.name}.{column.name}"
        for table in metadata.tables.values()
        for column in table.columns
        if not column.comment
    ]
    assert missing == []


def test_every_model_states_its_grain_dependencies_and_columns() -> None:
    for model in load_models(SQL_DIR):
        assert model.summary and model.grain, model.name
        assert model.columns and all(model.columns.values()), model.name


def _view_columns(wh: Warehouse, view: str) -> list[str]:
    rows = wh.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        (wh.schema, view),
    )
    return [row[0] for row in rows]


def test_every_model_column_is_described_in_output_order(warehouse: Warehouse) -> None:
    models = load_models(SQL_DIR)
    warehouse.run_sql_dir(SQL_DIR)
    by_name = {model.name: model for model in models}
    for model in models:
        # a table function has no catalog columns: xero__ar_ap_aging is `select *` from it
        view = "xero__ar_ap_aging" if model.is_table_function else model.name
        assert _view_columns(warehouse, view) == list(model.columns), model.name
    assert by_name["xero__ar_ap_aging"].columns.keys() == by_name["xero__ar_ap_aging_as_of"].columns.keys()


def test_descriptions_are_written_into_the_database_and_read_back(warehouse: Warehouse) -> None:
    warehouse.run_sql_dir(SQL_DIR)
    warehouse.run_sql_dir(SQL_DIR)  # a rebuild keeps them
    comments = warehouse.comments()
    columns = warehouse.query(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?",
        (warehouse.schema,),
    )
    assert len(columns) > 200
    assert [(table, column) for table, column in columns if not comments.get((table, column))] == []
    relations = {table for table, _ in columns}
    assert [table for table in relations if not comments.get((table, None))] == []
    assert comments[("invoice", None)] == INVOICES.table.description
    assert (
        comments[("organisation", "base_currency")] == ORGANISATION.table.column("base_currency").description
    )
    assert comments[("invoice", "_raw")].startswith("the record's JSON exactly as Xero sent it")
    assert comments[("_sync_state", "watermark")].startswith("largest UpdatedDateUTC committed")
    models = {model.name: model for model in load_models(SQL_DIR)}
    assert comments[("xero__cash_by_month", "cash_out")] == models["xero__cash_by_month"].columns["cash_out"]
    assert comments[("xero__ar_ap_aging_as_of", None)].startswith(
        models["xero__ar_ap_aging_as_of"].description
    )
    assert (
        "Grain: one row per tenant_id, cash_month, currency_code" in comments[("xero__cash_by_month", None)]
    )


def test_unchanged_descriptions_are_not_rewritten(warehouse: Warehouse) -> None:
    with warehouse._backend.transaction(warehouse.schema) as session:
        warehouse._backend.use_schema(session, warehouse.schema)
        assert apply_table_comments(session, warehouse.dialect, warehouse.schema, warehouse._metadata) == 0  # type: ignore[arg-type]
        session.execute('COMMENT ON COLUMN "invoice"."total" IS \'stale text\'')
        assert apply_table_comments(session, warehouse.dialect, warehouse.schema, warehouse._metadata) == 1  # type: ignore[arg-type]
    assert warehouse.comments()[("invoice", "total")] == INVOICES.table.column("total").description


def test_sql_readme_is_up_to_date_with_the_generator() -> None:
    current = README.read_text(encoding="utf-8")
    assert replace_section(current, data_dictionary(SQL_DIR)) == current, (
        "sql/README.md is out of date: run `python -m xero dictionary --update sql/README.md`"
    )


def test_dictionary_command_prints_or_updates_the_generated_section(tmp_path: Path, capsys) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(
        f"# Models\n\nhand-written\n\n{BEGIN_MARKER}\nSTALE TEXT\n{END_MARKER}\n\nfooter\n", encoding="utf-8"
    )
    assert main(["dictionary", "--sql-dir", str(SQL_DIR), "--update", str(stale)]) == 0
    text = stale.read_text(encoding="utf-8")
    assert text.startswith("# Models\n\nhand-written\n") and text.endswith("footer\n")
    assert "STALE TEXT" not in text and "### `xero__cash_by_month` (view)" in text
    assert main(["dictionary", "--sql-dir", str(SQL_DIR)]) == 0
    assert "| `cash_in` | money received (positive) |" in capsys.readouterr().out


def test_dictionary_command_names_a_malformed_model(tmp_path: Path, capsys) -> None:
    models = tmp_path / "sql"
    shutil.copytree(SQL_DIR, models)
    (models / "xero__broken.sql").write_text(
        "-- xero__broken: no columns\nselect 1 as one\n", encoding="utf-8"
    )
    assert main(["dictionary", "--sql-dir", str(models)]) == 1
    assert "xero__broken.sql: the header needs a '-- Grain: …' line" in capsys.readouterr().err
