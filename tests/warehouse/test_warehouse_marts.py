"""The ``sql/`` models on DuckDB and PostgreSQL: staging keeps every row, and each mart's rule, stated in its
header, holds on hand-built rows (one test per rule)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.conftest import ParquetBatch
from xero.entities import ACCOUNTS, CONTACTS, INVOICES, ORGANISATION, PAYMENTS
from xero.warehouse import Warehouse
from xero.warehouse.models import load_models

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
T1, T2 = "tenant-1", "tenant-2"
TODAY = datetime.now(UTC).date()
MARTS = (
    "xero__invoice_line_items",
    "xero__revenue_by_month",
    "xero__cash_by_month",
    "xero__ar_ap_aging",
    "xero__customer_balance",
    "xero__dso_by_month",
    "xero__data_freshness",
)
D = Decimal


def one(wh: Warehouse, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    [row] = wh.query(sql, params)
    return row


class Ledger:
    """Hand-built Xero rows for a few tenants: add what a test needs, then :meth:`build` the warehouse."""

    def __init__(self, warehouse: Warehouse, batch: ParquetBatch, tmp_path: Path) -> None:
        self.warehouse = warehouse
        self.batch = batch
        self.tmp_path = tmp_path
        self.tenants: set[str] = set()

    def organisation(self, tenant: str, name: str, base_currency: str = "NZD") -> None:
        self.tenants.add(tenant)
        self.batch.add(
            ORGANISATION.table, tenant, organisation_id=tenant, name=name, base_currency=base_currency
        )

    def contact(self, tenant: str, contact_id: str, name: str) -> None:
        self.tenants.add(tenant)
        self.batch.add(CONTACTS.table, tenant, contact_id=contact_id, name=name, contact_status="ACTIVE")

    def invoice(
        self,
        tenant: str,
        invoice_id: str,
        total: str,
        *,
        type_: str = "ACCREC",
        status: str = "AUTHORISED",
        amount_due: str | None = None,
        invoice_date: date = date(2024, 3, 20),
        due_date: date | None = None,
        currency: str = "NZD",
        rate: str | None = "1",
        contact_id: str = "C-1",
        fully_paid_on: date | None = None,
    ) -> None:
        self.tenants.add(tenant)
        due = D(amount_due if amount_due is not None else ("0" if status == "PAID" else total))
        self.batch.add_entity(
            INVOICES,
            tenant,
            children={
                "invoice_line_item": [
                    {
                        "line_item_id": f"{invoice_id}-1",
                        "line_number": 1,
                        "line_amount": D(total),
                        "tax_amount": D(0),
                    }
                ]
            },
            invoice_id=invoice_id,
            type=type_,
            status=status,
            contact_id=contact_id,
            date=invoice_date,
            due_date=due_date or invoice_date + timedelta(days=30),
            total=D(total),
            amount_due=due,
            amount_paid=D(total) - due,
            currency_code=currency,
            currency_rate=None if rate is None else D(rate),
            line_amount_types="Exclusive",
            fully_paid_on_date=fully_paid_on,
        )

    def payment(
        self,
        tenant: str,
        payment_id: str,
        amount: str,
        paid_on: date,
        *,
        invoice_id: str | None = None,
        type_: str = "ACCRECPAYMENT",
        status: str = "AUTHORISED",
        rate: str = "1",
    ) -> None:
        self.tenants.add(tenant)
        self.batch.add(
            PAYMENTS.table,
            tenant,
            payment_id=payment_id,
            payment_type=type_,
            status=status,
            invoice_id=invoice_id,
            amount=D(amount),
            bank_amount=D(amount),
            currency_rate=D(rate),
            date=paid_on,
        )

    def build(self) -> Warehouse:
        """Load every entity of every tenant added and build the models."""
        data = self.batch.write(self.tmp_path / "data")
        for tenant in sorted(self.tenants):
            for entity in ("organisation", "accounts", "contacts", "invoices", "payments"):
                self.warehouse.load(tenant, entity, data, None, "run-1")
        self.warehouse.run_sql_dir(SQL_DIR)
        return self.warehouse


@pytest.fixture
def ledger(warehouse: Warehouse, batch: ParquetBatch, tmp_path: Path) -> Ledger:
    return Ledger(warehouse, batch, tmp_path)


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


@pytest.fixture
def marts(warehouse: Warehouse, batch: ParquetBatch, tmp_path: Path) -> Warehouse:
    """Load a small, consistent ledger for two tenants (the first with its organisation) and build the models."""
    batch.add(ORGANISATION.table, T1, organisation_id=T1, name="Harbour Trading", base_currency="NZD")
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
                currency_rate=Decimal(1),
                line_amount_types="Exclusive",
            )
    data = batch.write(tmp_path / "data")
    for tenant in (T1, T2):
        for entity in ("organisation", "accounts", "contacts", "invoices", "payments"):
            warehouse.load(tenant, entity, data, None, "run-1")
    warehouse.run_sql_dir(SQL_DIR)
    return warehouse


def test_models_are_rebuilt_idempotently_in_dependency_order(marts: Warehouse) -> None:
    names = marts.run_sql_dir(SQL_DIR)
    assert names == [model.name for model in load_models(SQL_DIR)]
    assert sorted(names) == sorted(path.stem for path in SQL_DIR.glob("*.sql"))
    for model in load_models(SQL_DIR):
        assert all(names.index(dependency) < names.index(model.name) for dependency in model.depends_on)
    assert one(marts, "SELECT count(*) FROM {{ schema }}.xero__revenue_by_month")[0] > 0


def test_staging_keeps_every_row_and_flags_status(marts: Warehouse) -> None:
    for staged, table in (
        ("stg_xero__organisation", "organisation"),
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
    assert one(marts, "SELECT count(*) FROM {{ schema }}.stg_xero__contact WHERE is_archived") == (2,)
    assert one(marts, "SELECT tenant_name, base_currency_code FROM {{ schema }}.stg_xero__organisation") == (
        "Harbour Trading",
        "NZD",
    )


def test_invoice_line_items_are_enriched_without_fan_out(marts: Warehouse) -> None:
    assert one(marts, "SELECT count(*) FROM {{ schema }}.xero__invoice_line_items") == (26,)
    row = one(
        marts,
        "SELECT invoice_number IS NULL, invoice_type, contact_name, account_id, account_name, account_class, "
        "net_line_amount, tenant_name, net_line_amount_base "
        "FROM {{ schema }}.xero__invoice_line_items WHERE tenant_id = ? AND line_item_id = ?",
        (T1, "S-CURRENT-2"),
    )
    # code 260 was reused: the active account wins over the deleted one
    assert row == (
        True,
        "ACCREC",
        "Customer Ltd",
        "A-260",
        "Other revenue",
        "REVENUE",
        D("40.0000"),
        "Harbour Trading",
        D("40.0000"),
    )


def test_rule_revenue_counts_authorised_and_paid_sales_invoices(marts: Warehouse) -> None:
    rows = marts.query(
        "SELECT tenant_name, revenue_month, account_class, invoice_count, line_count, line_amount, tax_amount, "
        "net_amount, base_currency_code, net_amount_base "
        "FROM {{ schema }}.xero__revenue_by_month WHERE tenant_id = ? ORDER BY 2, 3",
        (T1,),
    )
    march = sum(map(D, ["60.10", "40.00", "200.20", "400.40", "700.00", "-25.00"]))  # not S-45 (SUBMITTED)
    assert rows == [
        (
            "Harbour Trading",
            date(2024, 2, 1),
            "REVENUE",
            1,
            1,
            D("500.50"),
            D("1.00"),
            D("500.50"),
            "NZD",
            D("500.50"),
        ),
        ("Harbour Trading", date(2024, 3, 1), "REVENUE", 4, 6, march, D("6.00"), march, "NZD", march),
    ]
    included = one(
        marts,
        "SELECT sum(li.line_amount) FROM {{ schema }}.invoice_line_item li JOIN {{ schema }}.invoice i "
        "ON i.tenant_id = li.tenant_id AND i.invoice_id = li.invoice_id "
        "WHERE i.type = 'ACCREC' AND i.status IN ('AUTHORISED', 'PAID')",
    )[0]
    assert one(marts, "SELECT sum(line_amount) FROM {{ schema }}.xero__revenue_by_month")[0] == included


def test_rule_aging_counts_authorised_documents_only_with_part_paid_amounts_due(marts: Warehouse) -> None:
    rows = marts.query(
        "SELECT tenant_name, ledger, contact_name, invoice_count, amount_current, amount_1_30_days, "
        "amount_31_60_days, amount_61_90_days, amount_over_90_days, amount_due_total, as_of_date "
        "FROM {{ schema }}.xero__ar_ap_aging WHERE tenant_id = ? ORDER BY ledger",
        (T1,),
    )
    # SUBMITTED (S-45), DRAFT, VOIDED, DELETED and fully paid invoices do not count; part-paid S-75 counts 50.00
    name = "Harbour Trading"
    assert rows == [
        (name, "payable", "Supplier Ltd", 2, 0, D("66.66"), D("33.33"), 0, 0, D("99.99"), TODAY),
        (
            name,
            "receivable",
            "Customer Ltd",
            4,
            D("100.10"),
            D("200.20"),
            0,
            D("50.00"),
            D("500.50"),
            D("850.80"),
            TODAY,
        ),
    ]
    authorised = one(
        marts,
        "SELECT sum(amount_due) FROM {{ schema }}.invoice WHERE status = 'AUTHORISED' AND tenant_id = ?",
        (T1,),
    )[0]
    assert (
        one(
            marts,
            "SELECT sum(amount_due_total) FROM {{ schema }}.xero__ar_ap_aging WHERE tenant_id = ?",
            (T1,),
        )[0]
        == authorised
    )


def test_rule_aging_as_of_a_past_date_counts_what_was_unpaid_then(ledger: Ledger) -> None:
    as_of = date(2025, 6, 30)
    ledger.organisation(T1, "Harbour Trading")
    ledger.contact(T1, "C-1", "Customer Ltd")
    june = date(2025, 6, 1)
    # paid in full after the as-of date: open then, 15 days past due
    ledger.invoice(T1, "PAID-LATER", "500.00", status="PAID", invoice_date=june, due_date=date(2025, 6, 15))
    ledger.payment(T1, "P-LATER", "500.00", date(2025, 7, 10), invoice_id="PAID-LATER")
    # part-paid before, the rest after: 200.00 open then, not yet due
    ledger.invoice(T1, "SPLIT", "300.00", status="PAID", invoice_date=june, due_date=date(2025, 7, 1))
    ledger.payment(T1, "P-SPLIT-1", "100.00", date(2025, 6, 15), invoice_id="SPLIT")
    ledger.payment(T1, "P-SPLIT-2", "200.00", date(2025, 7, 5), invoice_id="SPLIT")
    # paid before the as-of date (a deleted payment after it changes nothing): not open
    ledger.invoice(T1, "PAID-BEFORE", "80.00", status="PAID", invoice_date=june)
    ledger.payment(T1, "P-BEFORE", "80.00", date(2025, 6, 20), invoice_id="PAID-BEFORE")
    ledger.payment(T1, "P-DELETED", "80.00", date(2025, 7, 2), invoice_id="PAID-BEFORE", status="DELETED")
    # dated after the as-of date: not there yet
    ledger.invoice(T1, "LATER", "1000.00", invoice_date=date(2025, 7, 15))
    # submitted (awaiting approval) then and now: never counted
    ledger.invoice(T1, "SUBMITTED", "700.00", status="SUBMITTED", invoice_date=june)
    wh = ledger.build()
    rows = wh.query(
        "SELECT ledger, invoice_count, amount_current, amount_1_30_days, amount_due_total, oldest_due_date, "
        "as_of_date FROM {{ schema }}.xero__ar_ap_aging_as_of(CAST(? AS DATE))",
        (as_of,),
    )
    assert rows == [("receivable", 2, D("200.00"), D("500.00"), D("700.00"), date(2025, 6, 15), as_of)]
    today = wh.query(
        "SELECT * FROM {{ schema }}.xero__ar_ap_aging_as_of(current_date) ORDER BY ledger, contact_id"
    )
    assert today == wh.query("SELECT * FROM {{ schema }}.xero__ar_ap_aging ORDER BY ledger, contact_id")
    assert [(r[6], r[12]) for r in today] == [(1, D("1000.00"))]  # only LATER is open today


def test_rule_cash_in_and_cash_out_are_separate_positive_amounts(ledger: Ledger) -> None:
    ledger.organisation(T1, "Harbour Trading")
    ledger.invoice(T1, "S-1", "1050.40", status="PAID")
    ledger.invoice(T1, "B-1", "10.00", type_="ACCPAY", status="PAID")
    ledger.payment(T1, "P-IN-1", "700.00", date(2024, 3, 3), invoice_id="S-1")
    ledger.payment(T1, "P-IN-2", "350.40", date(2024, 3, 31), invoice_id="S-1")
    ledger.payment(T1, "P-DELETED", "200.20", date(2024, 3, 15), invoice_id="S-1", status="DELETED")
    ledger.payment(T1, "P-OUT", "10.00", date(2024, 3, 9), invoice_id="B-1", type_="ACCPAYPAYMENT")
    ledger.payment(T1, "P-REFUND-IN", "5.00", date(2024, 4, 1), type_="APCREDITPAYMENT")
    ledger.payment(T1, "P-REFUND-OUT", "7.00", date(2024, 4, 2), type_="ARCREDITPAYMENT")
    wh = ledger.build()
    rows = wh.query(
        "SELECT tenant_name, cash_month, currency_code, cash_in, cash_out, net_cash, payment_count "
        "FROM {{ schema }}.xero__cash_by_month ORDER BY cash_month, currency_code"
    )
    assert rows == [
        ("Harbour Trading", date(2024, 3, 1), "NZD", D("1050.40"), D("10.00"), D("1040.40"), 3),
        (
            "Harbour Trading",
            date(2024, 4, 1),
            None,
            D("5.00"),
            D("7.00"),
            D("-2.00"),
            2,
        ),  # credit notes not synced
    ]


def test_rule_base_currency_amounts_use_the_documents_rate_and_never_mix_currencies(ledger: Ledger) -> None:
    ledger.organisation(T1, "Harbour Trading", base_currency="NZD")
    ledger.contact(T1, "C-1", "Customer Ltd")
    # 0.8 USD per NZD: 80.00 USD is 100.00 NZD
    ledger.invoice(T1, "USD-1", "80.00", currency="USD", rate="0.8", due_date=TODAY + timedelta(days=5))
    ledger.invoice(T1, "NZD-1", "50.00", due_date=TODAY + timedelta(days=5))
    ledger.invoice(T1, "EUR-NO-RATE", "30.00", currency="EUR", rate=None, due_date=TODAY + timedelta(days=5))
    # the payment's own rate (0.5 USD per NZD on the payment day) converts cash: 40.00 USD is 80.00 NZD
    ledger.invoice(T1, "USD-PAID", "40.00", currency="USD", rate="0.8", status="PAID")
    ledger.payment(T1, "P-USD", "40.00", date(2024, 3, 25), invoice_id="USD-PAID", rate="0.5")
    wh = ledger.build()
    revenue = wh.query(
        "SELECT currency_code, net_amount, base_currency_code, net_amount_base "
        "FROM {{ schema }}.xero__revenue_by_month ORDER BY currency_code"
    )
    assert revenue == [
        ("EUR", D("30.00"), "NZD", None),
        ("NZD", D("50.00"), "NZD", D("50.00")),
        ("USD", D("120.00"), "NZD", D("150.00")),
    ]
    aging = wh.query(
        "SELECT currency_code, amount_due_total, amount_due_total_base FROM {{ schema }}.xero__ar_ap_aging "
        "ORDER BY currency_code"
    )
    assert aging == [
        ("EUR", D("30.00"), None),
        ("NZD", D("50.00"), D("50.00")),
        ("USD", D("80.00"), D("100.00")),
    ]
    balance = wh.query(
        "SELECT currency_code, outstanding, outstanding_base FROM {{ schema }}.xero__customer_balance "
        "ORDER BY currency_code"
    )
    assert balance == [
        ("EUR", D("30.00"), None),
        ("NZD", D("50.00"), D("50.00")),
        ("USD", D("80.00"), D("100.00")),
    ]
    cash = one(
        wh, "SELECT currency_code, cash_in, cash_in_base, cash_out_base FROM {{ schema }}.xero__cash_by_month"
    )
    assert cash == ("USD", D("40.00"), D("80.00"), 0)


def test_rule_every_mart_carries_the_tenant_name(ledger: Ledger) -> None:
    ledger.organisation(T1, "Harbour Trading")
    for tenant in (T1, T2):  # T2's organisation is not loaded: its id stands in for the name
        ledger.contact(tenant, "C-1", "Customer Ltd")
        ledger.invoice(tenant, "S-1", "100.00", invoice_date=TODAY - timedelta(days=3))
        ledger.invoice(tenant, "S-2", "60.00", status="PAID", invoice_date=TODAY - timedelta(days=3))
        ledger.payment(tenant, "P-1", "60.00", TODAY - timedelta(days=1), invoice_id="S-2")
    wh = ledger.build()
    for mart in MARTS:
        names = wh.query(f"SELECT DISTINCT tenant_id, tenant_name FROM {{{{ schema }}}}.{mart} ORDER BY 1")
        assert names == [(T1, "Harbour Trading"), (T2, T2)], mart


def test_rule_customer_balance_outstanding_overdue_and_payment_habits(ledger: Ledger) -> None:
    ledger.organisation(T1, "Harbour Trading")
    ledger.contact(T1, "C-1", "Customer Ltd")
    recent = TODAY - timedelta(days=20)
    ledger.invoice(T1, "OVERDUE", "100.00", invoice_date=recent, due_date=TODAY - timedelta(days=1))
    ledger.invoice(T1, "NOT-DUE", "50.00", invoice_date=recent, due_date=TODAY + timedelta(days=10))
    ledger.invoice(T1, "SUBMITTED", "999.00", status="SUBMITTED", invoice_date=recent)
    ledger.invoice(
        T1,
        "PAID-30",
        "200.00",
        status="PAID",
        invoice_date=TODAY - timedelta(days=40),
        fully_paid_on=TODAY - timedelta(days=10),
    )
    ledger.payment(T1, "P-30", "200.00", TODAY - timedelta(days=10), invoice_id="PAID-30")
    ledger.invoice(
        T1,
        "PAID-OLD",
        "300.00",
        status="PAID",
        invoice_date=TODAY - timedelta(days=420),
        fully_paid_on=TODAY - timedelta(days=400),
    )
    ledger.payment(T1, "P-OLD", "300.00", TODAY - timedelta(days=400), invoice_id="PAID-OLD")
    ledger.invoice(T1, "BILL", "70.00", type_="ACCPAY", invoice_date=recent, contact_id="C-1")
    wh = ledger.build()
    row = one(
        wh,
        "SELECT contact_name, currency_code, outstanding, overdue, open_invoice_count, invoiced_last_12_months, "
        "paid_last_12_months, avg_days_to_pay, outstanding_base FROM {{ schema }}.xero__customer_balance",
    )
    assert row == (
        "Customer Ltd",
        "NZD",
        D("150.00"),
        D("100.00"),
        2,
        D("350.00"),
        D("200.00"),
        D("30.0"),
        D("150.00"),
    )


def test_rule_dso_uses_month_end_receivables_and_the_months_sales(ledger: Ledger) -> None:
    ledger.organisation(T1, "Harbour Trading")
    ledger.contact(T1, "C-1", "Customer Ltd")
    ledger.invoice(T1, "JAN", "1000.00", status="PAID", invoice_date=date(2025, 1, 10))
    ledger.payment(T1, "P-FEB", "400.00", date(2025, 2, 5), invoice_id="JAN")
    ledger.payment(T1, "P-MAR", "600.00", date(2025, 3, 20), invoice_id="JAN")
    ledger.invoice(T1, "FEB", "500.00", invoice_date=date(2025, 2, 15))
    ledger.invoice(T1, "SUBMITTED", "900.00", status="SUBMITTED", invoice_date=date(2025, 1, 20))
    wh = ledger.build()
    rows = wh.query(
        "SELECT month, currency_code, receivables_end, revenue, days_in_month, dso_days "
        "FROM {{ schema }}.xero__dso_by_month WHERE month <= DATE '2025-04-01' ORDER BY month"
    )
    assert rows == [
        (date(2025, 1, 1), "NZD", D("1000.00"), D("1000.00"), 31, D("31.0")),
        (date(2025, 2, 1), "NZD", D("1100.00"), D("500.00"), 28, D("61.6")),
        (date(2025, 3, 1), "NZD", D("500.00"), 0, 31, None),
        (date(2025, 4, 1), "NZD", D("500.00"), 0, 30, None),
    ]
    last = one(wh, "SELECT max(month), count(*) FROM {{ schema }}.xero__dso_by_month")
    assert last[0] == TODAY.replace(day=1)
    for month_end in (date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)):
        aged = one(
            wh,
            "SELECT sum(amount_due_total) FROM {{ schema }}.xero__ar_ap_aging_as_of(CAST(? AS DATE)) "
            "WHERE ledger = 'receivable'",
            (month_end,),
        )[0]
        dso = one(
            wh,
            "SELECT receivables_end FROM {{ schema }}.xero__dso_by_month WHERE month = CAST(? AS DATE)",
            (month_end.replace(day=1),),
        )[0]
        assert aged == dso, month_end


def test_rule_data_freshness_per_tenant_and_entity(ledger: Ledger, batch: ParquetBatch) -> None:
    ledger.organisation(T1, "Harbour Trading")
    ledger.invoice(T1, "S-1", "10.00")
    ledger.invoice(T1, "S-2", "20.00")
    batch.quarantine(T1, "invoices", "invoice", "S-3", "expect_column_values_to_be_in_set(status): got 'X'")
    wh = ledger.build()
    rows = wh.query(
        "SELECT tenant_name, entity, watermark, last_run_id, rows_in_table, stale_rows, quarantined_rows, "
        "quarantined_last_run FROM {{ schema }}.xero__data_freshness WHERE entity IN ('invoices', 'organisation') "
        "ORDER BY entity"
    )
    assert rows == [
        ("Harbour Trading", "invoices", None, "run-1", 2, 0, 1, 1),
        ("Harbour Trading", "organisation", None, "run-1", 1, 0, 0, 0),
    ]
    # a parent row kept at an older version because its newer one is quarantined is counted as stale
    with wh._backend.transaction(wh.schema) as session:
        session.execute(
            f"UPDATE {session.table('invoice')} SET _stale_since = now() WHERE invoice_id = 'S-2'"
        )
    wh.run_sql_dir(SQL_DIR)
    assert one(wh, "SELECT stale_rows FROM {{ schema }}.xero__data_freshness WHERE entity = 'invoices'") == (
        1,
    )
