"""The marts runner: model headers, dependency order (not file order), refusals, and retired views."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xero.warehouse import Warehouse
from xero.warehouse.models import ModelError, load_models, parse_model

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def model(directory: Path, name: str, select: str, depends: str = "none", extra: str = "") -> Path:
    path = directory / f"{name}.sql"
    path.write_text(
        f"-- {name}: a test model.\n-- Grain: one row\n-- Depends on: {depends}\n{extra}--\n-- Columns:\n"
        f"--   n  a number\n--      that goes on\n{select}\n",
        encoding="utf-8",
    )
    return path


def test_header_is_parsed(tmp_path: Path) -> None:
    parsed = parse_model(model(tmp_path, "xero__a", "select 1 as n;", extra="-- It counts one.\n"))
    assert (parsed.name, parsed.summary, parsed.description, parsed.grain) == (
        "xero__a",
        "a test model.",
        "a test model. It counts one.",
        "one row",
    )
    assert parsed.columns == {"n": "a number that goes on"}
    assert parsed.select == "select 1 as n"
    assert parsed.depends_on == () and not parsed.is_table_function
    function = parse_model(
        model(tmp_path, "xero__f", "select as_of as n", extra="-- Kind: table function (as_of date)\n")
    )
    assert function.parameters == (("as_of", "date"),) and function.kind == "table function (as_of date)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "select 1 as n\n", "the first line must be '-- <model name>: <summary>'", id="no-header"
        ),
        pytest.param(
            "-- xero__other: x\nselect 1\n",
            "the header names 'xero__other', the file is 'xero__m'",
            id="name",
        ),
        pytest.param(
            "-- xero__m: x\n-- Grain: g\n-- Depends on: none\n-- Columns:\n--   n  d\ncreate view v as select 1 as n\n",
            "after the header comes one select",
            id="create",
        ),
        pytest.param(
            "-- xero__m: x\n-- Depends on: none\n-- Columns:\n--   n  d\nselect 1\n",
            "'-- Grain: …'",
            id="grain",
        ),
        pytest.param(
            "-- xero__m: x\n-- Grain: g\n-- Depends on: none\nselect 1\n", "'-- Columns:' block", id="columns"
        ),
        pytest.param(
            "-- xero__m: x\n-- Grain: g\n-- Depends on: none\n-- Kind: table\n-- Columns:\n--   n  d\nselect 1\n",
            "unknown Kind 'table'",
            id="kind",
        ),
    ],
)
def test_malformed_headers_are_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "xero__m.sql"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match=re.escape("xero__m.sql: ")) as info:
        parse_model(path)
    assert message in str(info.value)


def test_models_run_in_dependency_order_not_file_order(tmp_path: Path) -> None:
    model(tmp_path, "a_top", "select n from b_middle join z_base using (n)", depends="b_middle, z_base")
    model(tmp_path, "b_middle", "select n from z_base", depends="z_base")
    model(tmp_path, "c_alone", "select 1 as n")
    model(tmp_path, "z_base", "select 1 as n")
    assert [m.name for m in load_models(tmp_path)] == ["c_alone", "z_base", "b_middle", "a_top"]


def test_an_undeclared_dependency_is_refused(tmp_path: Path) -> None:
    model(tmp_path, "a_top", "select n from z_base -- z_base is read but not declared", depends="none")
    model(tmp_path, "z_base", "select 1 as n")
    with pytest.raises(
        ModelError, match=re.escape("a_top.sql: reads z_base but does not list it under 'Depends on'")
    ):
        load_models(tmp_path)


def test_unknown_dependencies_and_cycles_are_refused(tmp_path: Path) -> None:
    model(tmp_path, "a", "select 1 as n", depends="missing_model")
    with pytest.raises(ModelError, match=re.escape("a.sql: depends on unknown models missing_model")):
        load_models(tmp_path)
    model(tmp_path, "a", "select n from b", depends="b")
    model(tmp_path, "b", "select n from a", depends="a")
    with pytest.raises(ModelError, match="cycle"):
        load_models(tmp_path)


def test_a_view_of_a_removed_model_is_dropped_and_other_views_are_kept(warehouse: Warehouse) -> None:
    warehouse.run_sql_dir(SQL_DIR)
    with warehouse._backend.transaction(warehouse.schema) as session:
        warehouse._backend.use_schema(session, warehouse.schema)
        session.execute(
            "CREATE VIEW xero__cash_received_by_month AS SELECT tenant_id, amount FROM stg_xero__payment"
        )
        session.execute("CREATE VIEW my_report AS SELECT 1 AS n")
    names = warehouse.run_sql_dir(SQL_DIR)
    views = {
        row[0]
        for row in warehouse.query(
            "SELECT table_name FROM information_schema.views WHERE table_schema = ?", (warehouse.schema,)
        )
    }
    assert "xero__cash_received_by_month" not in views
    assert "my_report" in views
    assert set(names) <= views | {"xero__ar_ap_aging_as_of"}
