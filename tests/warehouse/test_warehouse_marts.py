"""The ``sql/`` models on DuckDB and PostgreSQL: staging keeps every row, marts add up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from xero.entities import ACCOUNTS, CONTACTS, INVOICES, PAYMENTS
from xero.warehouse import Warehouse

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
T1, T2 = "tenant-1", "tenant-2"
TODAY = datetime.now(UTC).date()

# (invoice id, type, status, amount due, days past due, [(line amount, account code)])
INVOICE_ROWS = [
    ("S-CURRENT", "ACCREC", "AUTHORISED", "100.10", -5, [("60.10", "200"), ("40.00", "260")]),
    ("S-15", "ACCREC", "AUTHORISED", "200.20", 15, [("200.20", "200")]),
    ("S-45", "ACCREC", "SUBMITTED", "300.30", 45, [("300.30", "200")]),
    ("S-75", "ACCREC", "AUTHORISED", "50.00", 75, [("400.40", "200")]),  # part-paid
    ("S-120", "ACCREC", "AUTHORISED", "500.50", 120, [("500.50", "200")]),
    ("S-PAID", "ACCREC", "PAID", "0.00", 10, [("700.00", "200"), ("-25.00", "260")]),
    ("S-DRAFT", "ACCREC", "DRAFT", "999.00", 10, [("999.00", "200")]),
    ("S-VOID", "ACCREC", "VOIDED", "888.00", 10, [("888.00", "200")]),
    ("S-DEL", "ACCREC", "DELETED", "777.00", 10, [("777.00", "200")]),
    ("B-30", "ACCPAY", "AUTHORISED", "66.66", 30, [("66.66", "400")]),
    ("B-31", "ACCPAY", "AUTHORISED", "33.33", 31, [("33.33", "400")]),
]
PAYMENT_ROWS = [
    ("P-1", "ACCRECPAYMENT", "AUTHORISED", "S-PAID", "700.00", date(2024, 3, 3)),
    ("P-2", "ACCRECPAYMENT", "AUTHORISED", "S-75", "350.40", date(2024, 3, 31)),
    ("P-3", "ACCRECPAYMENT", "DELETED", "S-15", "200.20", date(2024, 3, 15)),
    ("P-4", "ACCPAYPAYMENT", "AUTHORISED", "B-30", "10.00", date(2024, 4, 1)),
]


@pytest.fixture
def marts(warehouse: Warehouse, batch, tmp_path: Path) -> Warehouse:
    """Load a small, consistent ledger for two tenants and build the models."""
    for tenant in (T1, T2):
        for account_id, code, name, type_, class_, status in (
            ("A-200", "200", "Sales", "REVENUE", "REVENUE", "ACTIVE"),
            ("A-260-OLD", "260", "Old other revenue", "OTHERINCOME", "REVENUE", "DELETED"),
            ("A-260", "260", "Other revenue", "OTHERINCOME", "REVENUE", "ACTIVE"),
            ("A-400", "400", "Advertising", "OVERHEADS", "EXPENSE", "ACTIVE"),
        ):
            batch.add(
                ACCOUNTS.table,
                tenant,
                account_id=account_id,
                code=code,
                name=name,
                status=status,
                **{"type": type_, "class": class_},
            )
        batch.add(CONTACTS.table, tenant, contact_id="C-CUST", name="Customer Ltd", contact_status="ACTIVE")
        batch.add(CONTACTS.table, tenant, contact_id="C-SUPP", name="Supplier Ltd", contact_status="ARCHIVED")
        for invoice_id, type_, status, due, days, lines in INVOICE_ROWS:
            batch.add_entity(
                INVOICES,
                tenant,
                children={
                    "invoice_line_item": [
                        {
                            "line_item_id": f"{invoice_id}-{n}",
                            "line_number": n,
                            "line_amount": Decimal(amount),
                            "tax_amount": Decimal("1.00"),
                            "account_code": code,
                        }
                        for n, (amount, code) in enumerate(lines, start=1)
                    ]
                },
                invoice_id=invoice_id,
                type=type_,
                status=status,
                contact_id="C-CUST" if type_ == "ACCREC" else "C-SUPP",
                date=date(2024, 3, 20) if invoice_id != "S-120" else date(2024, 2, 10),
                due_date=TODAY - timedelta(days=days),
                amount_due=Decimal(due),
                currency_code="NZD",
                line_amount_types="Exclusive",
            )
        for payment_id, type_, status, invoice_id, amount, paid_on in PAYMENT_ROWS:
            batch.add(
                PAYMENTS.table,
                tenant,
                payment_id=payment_id,
                payment_type=type_,
                status=status,
                invoice_id=invoice_id,
                amount=Decimal(amount),
                bank_amount=Decimal(amount),
                date=paid_on,
            )
    data = batch.write(tmp_path / "data")
    for tenant in (T1, T2):
        for entity in ("accounts", "contacts", "invoices", "payments"):
            warehouse.load(tenant, entity, data, None, "run-1")
    warehouse.run_sql_dir(SQL_DIR)
    return warehouse


def one(wh: Warehouse, sql: str, params=()) -> tuple:
    [row] = wh.query(sql, params)
    return row


def test_models_are_rebuilt_idempotently(marts: Warehouse) -> None:
    assert marts.run_sql_dir(SQL_DIR) == [path.stem for path in sorted(SQL_DIR.glob("*.sql"))]
    assert one(marts, "SELECT count(*) FROM {{ schema }}.xero__revenue_by_month")[0] > 0


def test_staging_keeps_every_row_and_flags_status(marts: Warehouse) -> None:
    for staged, table in (
        ("stg_xero__account", "account"),
        ("stg_xero__contact", "contact"),
        ("stg_xero__invoice", "invoice"),
        ("stg_xero__invoice_line_item", "invoice_line_item"),
        ("stg_xero__payment", "payment"),
    ):
        assert one(marts, f"SELECT count(*) FROM {{{{ schema }}}}.{staged}") == one(
            marts, f"SELECT count(*) FROM {{{{ schema }}}}.{table}"
        )
    flags = marts.query(
        "SELECT invoice_id, is_deleted, is_voided, is_draft, invoice_date, invoice_status "
        "FROM {{ schema }}.stg_xero__invoice WHERE tenant_id = ? AND invoice_id IN ('S-DEL', 'S-VOID', 'S-15') "
        "ORDER BY invoice_id",
        (T1,),
    )
    assert flags == [
        ("S-15", False, False, False, date(2024, 3, 20), "AUTHORISED"),
        ("S-DEL", True, False, False, date(2024, 3, 20), "DELETED"),
        ("S-VOID", False, True, False, date(2024, 3, 20), "VOIDED"),
    ]
    assert one(marts, "SELECT count(*) FROM {{ schema }}.stg_xero__payment WHERE is_deleted") == (2,)
    assert one(marts, "SELECT count(*) FROM {{ schema }}.stg_xero__contact WHERE is_archived") == (2,)


def test_invoice_line_items_are_enriched_without_fan_out(marts: Warehouse) -> None:
    assert one(marts, "SELECT count(*) FROM {{ schema }}.xero__invoice_line_items") == (26,)
    row = one(
        marts,
        "SELECT invoice_number IS NULL, invoice_type, contact_name, account_id, account_name, account_class, "
        "net_line_amount FROM {{ schema }}.xero__invoice_line_items WHERE tenant_id = ? AND line_item_id = ?",
        (T1, "S-CURRENT-2"),
    )
    # code 260 was reused: the active account wins over the deleted one
    assert row == (True, "ACCREC", "Customer Ltd", "A-260", "Other revenue", "REVENUE", Decimal("40.0000"))


def test_aging_adds_up_to_the_amount_due_of_open_invoices(marts: Warehouse) -> None:
    rows = marts.query(
        "SELECT ledger, contact_name, invoice_count, amount_current, amount_1_30_days, amount_31_60_days, "
        "amount_61_90_days, amount_over_90_days, amount_due_total, as_of_date "
        "FROM {{ schema }}.xero__ar_ap_aging WHERE tenant_id = ? ORDER BY ledger",
        (T1,),
    )
    # SUBMITTED counts; DRAFT, VOIDED, DELETED and fully paid invoices do not
    receivable = ["100.10", "200.20", "300.30", "50.00", "500.50"]
    payable = ["66.66", "33.33"]
    assert rows == [
        ("payable", "Supplier Ltd", 2, 0, Decimal("66.66"), Decimal("33.33"), 0, 0, Decimal("99.99"), TODAY),
        (
            "receivable",
            "Customer Ltd",
            5,
            Decimal("100.10"),
            Decimal("200.20"),
            Decimal("300.30"),
            Decimal("50.00"),
            Decimal("500.50"),
            sum(map(Decimal, receivable)),
            TODAY,
        ),
    ]
    total = one(marts, "SELECT sum(amount_due_total) FROM {{ schema }}.xero__ar_ap_aging")[0]
    open_due = one(
        marts,
        "SELECT sum(amount_due) FROM {{ schema }}.invoice WHERE status NOT IN ('VOIDED', 'DELETED', 'DRAFT')",
    )[0]
    assert total == open_due == 2 * sum(map(Decimal, receivable + payable))


def test_cash_received_excludes_deleted_payments(marts: Warehouse) -> None:
    rows = marts.query(
        "SELECT payment_month, payment_type, cash_direction, currency_code, payment_count, amount "
        "FROM {{ schema }}.xero__cash_received_by_month WHERE tenant_id = ? ORDER BY 1, 2",
        (T2,),
    )
    assert rows == [
        (date(2024, 3, 1), "ACCRECPAYMENT", "in", "NZD", 2, Decimal("1050.40")),
        (date(2024, 4, 1), "ACCPAYPAYMENT", "out", "NZD", 1, Decimal("10.00")),
    ]
    live = one(marts, "SELECT sum(amount) FROM {{ schema }}.payment WHERE status <> 'DELETED'")[0]
    assert one(marts, "SELECT sum(amount) FROM {{ schema }}.xero__cash_received_by_month")[0] == live


def test_revenue_is_the_sum_of_lines_of_authorised_and_paid_sales(marts: Warehouse) -> None:
    rows = marts.query(
        "SELECT revenue_month, account_class, invoice_count, line_count, line_amount, tax_amount, net_amount "
        "FROM {{ schema }}.xero__revenue_by_month WHERE tenant_id = ? ORDER BY 1, 2",
        (T1,),
    )
    march = ["60.10", "40.00", "200.20", "400.40", "700.00", "-25.00"]  # S-45 is SUBMITTED: not revenue
    assert rows == [
        (date(2024, 2, 1), "REVENUE", 1, 1, Decimal("500.50"), Decimal("1.00"), Decimal("500.50")),
        (
            date(2024, 3, 1),
            "REVENUE",
            4,
            6,
            sum(map(Decimal, march)),
            Decimal("6.00"),
            sum(map(Decimal, march)),
        ),
    ]
    included = one(
        marts,
        "SELECT sum(li.line_amount) FROM {{ schema }}.invoice_line_item li JOIN {{ schema }}.invoice i "
        "ON i.tenant_id = li.tenant_id AND i.invoice_id = li.invoice_id "
        "WHERE i.type = 'ACCREC' AND i.status IN ('AUTHORISED', 'PAID')",
    )[0]
    assert one(marts, "SELECT sum(line_amount) FROM {{ schema }}.xero__revenue_by_month")[0] == included
