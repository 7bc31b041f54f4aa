"""One organisation's seeded data: columnar generation, records rendered on demand, and changes.

Nothing is held as per-record Python objects: each collection is a set of numpy columns plus a
:class:`~xero_sandbox.index.RecordIndex` (ids and the default order). Records are rendered only when a
page asks for them; changes write into the columns (status, amounts, UpdatedDateUTC) or into a small
per-record override dict.

Invoices, the high-volume collection, are rendered straight to JSON (:meth:`Organisation.invoices_json`):
a page reads its columns once, each invoice is a few f-strings over pre-encoded fragments (account
fields, descriptions, the embedded contact, dates), and no dict is built. That text is the one source of
an invoice; :meth:`Organisation.invoice_record` decodes it for callers that want a dict. The other
collections are rendered as dicts and encoded by the app.

Invoices in a foreign currency (``SandboxConfig.foreign_currency_ratio``) carry Xero's ``CurrencyRate``
(units of the invoice currency per unit of base currency); their payments carry the rate of the payment
day and a ``BankAmount`` in the base currency. They are drawn from a stream of their own, so the rest of
the data is the same with or without them.

Accounting holds by construction: line amounts are exclusive of tax, tax is rounded per line to
cents, ``Total = SubTotal + TotalTax``; the AUTHORISED payments of an invoice sum to its
``AmountPaid``; ``AmountDue = Total - AmountPaid`` (0 for VOIDED and DELETED); PAID exactly when
nothing is due.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
import numpy as np

from xero_sandbox.config import SandboxConfig
from xero_sandbox.index import RecordIndex, random_uuids, uuid_halves, uuid_texts

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED")
DRAFT, SUBMITTED, DELETED, AUTHORISED, PAID, VOIDED = range(6)
INVOICE_TYPES = ("ACCREC", "ACCPAY")
PAYMENT_STATUSES = ("AUTHORISED", "DELETED")
CONTACT_STATUSES = ("ACTIVE", "ARCHIVED")
ACCOUNT_STATUSES = ("ACTIVE", "ARCHIVED")


@dataclass(frozen=True)
class Country:
    """Organisation settings that vary by country."""

    code: str
    version: str
    currency: str
    tax_bp: int
    output_tax: str
    input_tax: str
    timezone: str
    city: str
    region: str
    phone_country: str
    tax_label: str


COUNTRIES = (
    Country(
        "NZ", "NZ", "NZD", 1500, "OUTPUT2", "INPUT2", "NEWZEALANDSTANDARDTIME", "Wellington", "", "64", "GST"
    ),
    Country(
        "AU", "AU", "AUD", 1000, "OUTPUT", "INPUT", "AUSEASTERNSTANDARDTIME", "Sydney", "NSW", "61", "GST"
    ),
    Country("GB", "UK", "GBP", 2000, "OUTPUT2", "INPUT2", "GMTSTANDARDTIME", "London", "", "44", "VAT"),
)

#: The foreign currency of each base currency's organisation and its typical rate (units per unit of base).
FOREIGN_CURRENCY: dict[str, tuple[str, float]] = {
    "NZD": ("AUD", 0.92),
    "AUD": ("USD", 0.65),
    "GBP": ("EUR", 1.17),
}

# (code, name, type, system account, tax kind: "out" / "in" / "none")
CHART: tuple[tuple[str, str, str, str, str], ...] = (
    ("090", "Business Bank Account", "BANK", "", "none"),
    ("200", "Sales", "REVENUE", "", "out"),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "", "in"),
    ("400", "Advertising", "OVERHEADS", "", "in"),
    ("610", "Accounts Receivable", "CURRENT", "DEBTORS", "none"),
    ("800", "Accounts Payable", "CURRLIAB", "CREDITORS", "none"),
    ("820", "Sales Tax", "CURRLIAB", "GST", "none"),
    ("960", "Retained Earnings", "EQUITY", "RETAINEDEARNINGS", "none"),
    ("091", "Business Savings Account", "BANK", "", "none"),
    ("260", "Other Revenue", "REVENUE", "", "out"),
    ("270", "Interest Income", "OTHERINCOME", "", "none"),
    ("404", "Bank Fees", "OVERHEADS", "", "none"),
    ("408", "Cleaning", "OVERHEADS", "", "in"),
    ("412", "Consulting & Accounting", "EXPENSE", "", "in"),
    ("416", "Depreciation", "DEPRECIATN", "", "none"),
    ("420", "Entertainment", "OVERHEADS", "", "in"),
    ("429", "General Expenses", "OVERHEADS", "", "in"),
    ("433", "Insurance", "OVERHEADS", "", "in"),
    ("445", "Light, Power, Heating", "OVERHEADS", "", "in"),
    ("461", "Printing & Stationery", "OVERHEADS", "", "in"),
    ("469", "Rent", "OVERHEADS", "", "in"),
    ("473", "Repairs and Maintenance", "OVERHEADS", "", "in"),
    ("489", "Telephone & Internet", "OVERHEADS", "", "in"),
    ("493", "Travel - National", "OVERHEADS", "", "in"),
    ("620", "Prepayments", "PREPAYMENT", "", "none"),
    ("630", "Inventory", "INVENTORY", "", "none"),
    ("710", "Office Equipment", "FIXED", "", "in"),
    ("720", "Computer Equipment", "FIXED", "", "in"),
    ("840", "Historical Adjustment", "CURRLIAB", "HISTORICAL", "none"),
    ("900", "Loan", "TERMLIAB", "", "none"),
    ("970", "Owner A Funds Introduced", "EQUITY", "", "none"),
)
MIN_ACCOUNTS = 8
ACCOUNT_CLASS = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "FIXED": "ASSET",
    "INVENTORY": "ASSET",
    "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "TERMLIAB": "LIABILITY",
    "PAYG": "LIABILITY",
    "EQUITY": "EQUITY",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
    "OTHERINCOME": "REVENUE",
    "DIRECTCOSTS": "EXPENSE",
    "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "DEPRECIATN": "EXPENSE",
}
REPORTING = {"ASSET": "ASS", "LIABILITY": "LIA", "EQUITY": "EQU", "REVENUE": "REV", "EXPENSE": "EXP"}
REPORTING_NAME = {
    "ASSET": "Assets",
    "LIABILITY": "Liabilities",
    "EQUITY": "Equity",
    "REVENUE": "Revenue",
    "EXPENSE": "Expenses",
}

ADJECTIVES = (
    "Blue",
    "Bright",
    "Golden",
    "Silver",
    "Rapid",
    "Quiet",
    "Northern",
    "Coastal",
    "Summit",
    "Harbour",
    "Green",
    "Red",
    "Urban",
    "Prime",
    "Clever",
    "Oak",
    "River",
    "Stone",
    "Cedar",
    "Maple",
)
NOUNS = (
    "Fish",
    "Anchor",
    "Bakery",
    "Builders",
    "Consulting",
    "Design",
    "Electrical",
    "Freight",
    "Gardens",
    "Hardware",
    "Imports",
    "Joinery",
    "Kitchens",
    "Logistics",
    "Media",
    "Nursery",
    "Optics",
    "Plumbing",
    "Supplies",
    "Traders",
)
SUFFIXES = ("Ltd", "Limited", "& Co", "Group", "Partners")
FIRST_NAMES = (
    "Ava",
    "Ben",
    "Chloe",
    "Daniel",
    "Ella",
    "Finn",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Kate",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Quinn",
    "Ruby",
    "Sam",
    "Tom",
)
LAST_NAMES = (
    "Anderson",
    "Brown",
    "Clarke",
    "Davies",
    "Evans",
    "Fraser",
    "Green",
    "Hughes",
    "Irwin",
    "Jones",
    "King",
    "Lee",
    "Martin",
    "Nguyen",
    "O'Brien",
    "Patel",
    "Reid",
    "Smith",
    "Taylor",
    "Walker",
)
STREETS = ("Queen Street", "High Street", "Victoria Road", "Station Road", "Church Lane", "Harbour Drive")
SALES_LINES = (
    "Consulting services",
    "Design work",
    "Monthly support",
    "Installation",
    "Training session",
    "Product sale",
    "Delivery charge",
    "Maintenance visit",
    "Software licence",
    "Workshop",
)
PURCHASE_LINES = (
    "Office supplies",
    "Stock purchase",
    "Courier",
    "Power bill",
    "Internet",
    "Rent",
    "Cleaning",
    "Repairs",
    "Advertising",
    "Travel",
)
ITEM_CODES = ("GB1-White", "GB2-Black", "DevD", "Support-M", "Train-H", "BOOK", "MUG", "CAP")


def ms_date(ms: int) -> str:
    """Format Unix ms as Xero's ``/Date(ms+0000)/``."""
    return f"/Date({int(ms)}+0000)/"


@functools.cache
def _iso_day(day: int) -> str:
    """Return an epoch day number as ``YYYY-MM-DD`` (cached: data spans a few thousand days)."""
    return date.fromordinal(int(day) + _EPOCH_ORDINAL).isoformat()


@functools.cache
def day_date(day: int) -> str:
    """Format an epoch day number as a midnight-UTC ``/Date(ms+0000)/``."""
    return ms_date(int(day) * DAY_MS)


@functools.cache
def day_string(day: int) -> str:
    """Format an epoch day number as Xero's ``DateString`` (``YYYY-MM-DDT00:00:00``)."""
    return _iso_day(day) + "T00:00:00"


def utc_string(ms: int) -> str:
    """Format Unix ms as ``UpdatedDateUTCString`` (ISO, second precision, ``Z``)."""
    day, second = divmod(int(ms) // 1000, 86_400)
    return f"{_iso_day(day)}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"


def money(cents: int) -> float:
    """Return cents as a JSON number with two decimals' worth of precision."""
    return round(int(cents) / 100, 2)


def money_json(cents: int) -> str:
    """Return cents as the JSON number text :func:`money` encodes to (``12.5``, ``100.0``), without a float."""
    if cents < 0:
        return "-" + money_json(-cents)
    return f"{cents // 100}.{_CENTS[cents % 100]}"


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
#: Rendered contact summaries kept per organisation (a page of invoices reuses few contacts).
_STUB_CACHE_SIZE = 20_000
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder().decode
_BOOLEAN = ("false", "true")
#: The decimals of ``x.00`` … ``x.99`` as a float's shortest text writes them (``0``, ``01``, ``1``, ``25``).
_CENTS = tuple("0" if c == 0 else f"{c // 10}" if c % 10 == 0 else f"{c:02d}" for c in range(100))


def _text(value: str) -> str:
    """Return ``value`` as a JSON string literal (quoted and escaped)."""
    return _ENCODE(value).decode()


_DESCRIPTIONS = (tuple(map(_text, SALES_LINES)), tuple(map(_text, PURCHASE_LINES)))  # by invoice type
_ITEM_CODES = tuple(f',"ItemCode":{_text(code)}' for code in ITEM_CODES)


def derived_uuid(*parts: object) -> str:
    """Return a stable version-4-shaped UUID derived from ``parts``."""
    digest = bytearray(hashlib.blake2b(repr(parts).encode(), digest_size=16).digest())
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _rng(cfg: SandboxConfig, tenant: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, tenant, stream])


def as_dicts(records: Sequence[Any]) -> list[dict[str, Any]]:
    """Return rendered records (see :meth:`Organisation.render_page`) as dicts."""
    return [_DECODE(r) if isinstance(r, msgspec.Raw) else r for r in records]


def _group_cumsum(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Cumulative sum that restarts at each group; ``group_start`` is each item's group start offset."""
    total = np.cumsum(values)
    before = np.where(group_start > 0, total[np.maximum(group_start - 1, 0)], 0)
    return total - before


class NotFound(LookupError):
    """No record has the requested id."""


class Organisation:
    """One tenant's data: accounts, contacts, invoices (with line items) and payments.

    :param cfg: the sandbox configuration.
    :param tenant_index: which tenant (seeds and country follow from it).
    :param tenant_id: the tenant's id (also the OrganisationID).
    :param name: the organisation's name.
    """

    def __init__(self, cfg: SandboxConfig, tenant_index: int, tenant_id: str, name: str) -> None:
        self.cfg = cfg
        self.index_no = tenant_index
        self.tenant_id = tenant_id
        self.name = name
        self.country = COUNTRIES[tenant_index % len(COUNTRIES)]
        self.end_ms = int(cfg.data_end.timestamp() * 1000)
        self.end_day = self.end_ms // DAY_MS
        self.start_day = self.end_day - cfg.history_days
        self.created_ms = (self.start_day - 30) * DAY_MS + 9 * HOUR_MS
        self.branding_theme_id = derived_uuid(cfg.seed, tenant_index, "branding")
        #: JSON of the contact embedded in paged invoices, by contact position (emptied on every change).
        self._stub_cache: dict[int, str] = {}
        self._stub_version = 0  # bumped by every change: a render that raced one is not cached
        self._stub_lock = threading.Lock()
        self.overrides: dict[str, dict[int, dict[str, Any]]] = {
            "accounts": {},
            "contacts": {},
            "invoices": {},
            "payments": {},
            "organisation": {},
        }
        self._pick_rng = _rng(cfg, tenant_index, 99)
        self._build_accounts()
        self._build_contacts()
        self._build_invoices()

    # ------------------------------------------------------------------ generation
    def _build_accounts(self) -> None:
        cfg = self.cfg
        rng = _rng(cfg, self.index_no, 1)
        n = max(cfg.accounts, MIN_ACCOUNTS)
        rows = list(CHART[: min(n, len(CHART))])
        for k in range(n - len(rows)):
            rows.append((f"{500 + k}", f"Operating Expense {k + 1}", "OVERHEADS", "", "in"))
        self.acc_code = [r[0] for r in rows]
        self.acc_name = [r[1] for r in rows]
        self.acc_type = [r[2] for r in rows]
        self.acc_system = [r[3] for r in rows]
        self.acc_tax = [r[4] for r in rows]
        hi, lo = random_uuids(rng, n)
        status = np.zeros(n, dtype=np.int8)
        extra = np.arange(n) >= len(CHART)
        status[extra & (rng.random(n) < 0.1)] = 1
        self.acc_status = status
        updated = self.created_ms + rng.integers(0, 30 * DAY_MS, n)
        self.accounts = RecordIndex(hi, lo, updated.astype(np.int64))
        types = np.array(self.acc_type)
        active = status == 0
        self.revenue_accounts = np.flatnonzero(np.isin(types, ["REVENUE", "SALES"]) & active)
        self.expense_accounts = np.flatnonzero(
            np.isin(types, ["DIRECTCOSTS", "OVERHEADS", "EXPENSE", "FIXED"]) & active
        )
        self.bank_accounts = np.flatnonzero((types == "BANK") & active)
        self.code_to_account = {code: i for i, code in enumerate(self.acc_code)}
        #: Each account's ``"AccountCode":…,"AccountID":…`` as a line item carries it.
        self.acc_line_json = [
            f'"AccountCode":{_text(code)},"AccountID":"{account_id}"'
            for code, account_id in zip(self.acc_code, uuid_texts(hi, lo), strict=True)
        ]

    def _build_contacts(self) -> None:
        cfg = self.cfg
        rng = _rng(cfg, self.index_no, 2)
        n = cfg.contacts
        hi, lo = random_uuids(rng, n)
        role = rng.choice(np.array([0, 1, 2], dtype=np.int8), size=n, p=[0.45, 0.40, 0.15])
        role[0] = 0 if n > 1 else 2
        if n > 1:
            role[1] = 1
        self.con_role = role  # 0 customer, 1 supplier, 2 both
        self.con_person = rng.random(n) < 0.25
        self.con_name_key = rng.permutation(n)
        status = (rng.random(n) < cfg.archived_contact_ratio).astype(np.int8)
        status[:2] = 0
        self.con_status = status
        merged = np.full(n, -1, dtype=np.int64)
        archived = np.flatnonzero(status == 1)
        to_merge = archived[rng.random(len(archived)) < 0.5]
        if len(to_merge):
            merged[to_merge] = rng.integers(0, 2, len(to_merge))  # merged into one of the first two
        self.con_merged = merged
        self.con_tax_no = rng.integers(10_000_000, 99_999_999, n)
        self.con_has_tax = rng.random(n) < 0.4
        self.con_purchase_acct = (
            self.expense_accounts[rng.integers(0, len(self.expense_accounts), n)]
            if len(self.expense_accounts)
            else np.zeros(n, dtype=np.int64)
        )
        self.con_street = rng.integers(1, 400, n)
        self.con_phone = rng.integers(2_000_000, 9_999_999, n)
        updated = self.start_day * DAY_MS + rng.integers(0, cfg.history_days * DAY_MS, n)
        self.contacts = RecordIndex(hi, lo, updated.astype(np.int64))

    def _build_invoices(self) -> None:
        cfg = self.cfg
        rng = _rng(cfg, self.index_no, 3)
        n = cfg.invoices
        hi, lo = random_uuids(rng, n)
        is_rec = rng.random(n) < 0.6
        self.inv_type = np.where(is_rec, 0, 1).astype(np.int8)
        day = self.end_day - 1 - rng.integers(0, cfg.history_days, n)
        self.inv_day = day.astype(np.int32)
        self.inv_due = (day + np.array([7, 14, 20, 30])[rng.integers(0, 4, n)]).astype(np.int32)
        customers = np.flatnonzero(self.con_role != 1)
        suppliers = np.flatnonzero(self.con_role != 0)
        self.inv_contact = np.where(
            is_rec,
            customers[rng.integers(0, len(customers), n)],
            suppliers[rng.integers(0, len(suppliers), n)],
        ).astype(np.int32)
        self.inv_number = np.where(is_rec, np.cumsum(is_rec), np.cumsum(~is_rec)).astype(np.int32)

        # line items
        nl = 1 + rng.binomial(cfg.max_line_items - 1, 0.35, n) if cfg.max_line_items > 1 else np.ones(n, int)
        line_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(nl, out=line_start[1:])
        total_lines = int(line_start[-1])
        line_inv = np.repeat(np.arange(n), nl)
        qty = rng.integers(1, 6, total_lines).astype(np.int64)
        unit = np.clip(np.round(np.exp(rng.normal(np.log(8000), 1.0, total_lines))), 100, 5_000_000).astype(
            np.int64
        )
        amount = qty * unit
        taxable = rng.random(total_lines) < 0.85
        tax = np.where(taxable, (amount * self.country.tax_bp + 5000) // 10000, 0).astype(np.int64)
        revenue = self.revenue_accounts if len(self.revenue_accounts) else np.array([1])
        expense = self.expense_accounts if len(self.expense_accounts) else np.array([2])
        line_rec = is_rec[line_inv]
        acct = np.where(
            line_rec,
            revenue[rng.integers(0, len(revenue), total_lines)],
            expense[rng.integers(0, len(expense), total_lines)],
        )
        self.line_start = line_start
        self.line_hi, self.line_lo = random_uuids(_rng(cfg, self.index_no, 4), total_lines)
        self.line_qty = qty.astype(np.int16)
        self.line_unit = unit
        self.line_tax = tax
        self.line_taxable = taxable
        self.line_acct = acct.astype(np.int16)
        self.line_desc = rng.integers(0, 10, total_lines).astype(np.int8)
        self.line_item = np.where(
            rng.random(total_lines) < 0.3, rng.integers(0, len(ITEM_CODES), total_lines), -1
        )
        starts = line_start[:-1]
        sub_total = np.add.reduceat(amount, starts)
        total_tax = np.add.reduceat(tax, starts)
        self.inv_sub_total = sub_total
        self.inv_total_tax = total_tax
        total = sub_total + total_tax

        # statuses and payments
        r = rng.random(n)
        status = np.full(n, AUTHORISED, dtype=np.int8)
        status[r < 0.13] = VOIDED
        status[r < 0.10] = DELETED
        status[r < 0.08] = SUBMITTED
        status[r < 0.05] = DRAFT
        approved = status == AUTHORISED
        has_pay = approved & (rng.random(n) < cfg.payments_ratio)
        full = has_pay & (rng.random(n) < 0.75)
        partial = np.clip(
            np.floor(total * rng.uniform(0.1, 0.9, n)).astype(np.int64), 1, np.maximum(total - 1, 1)
        )
        paid = np.where(full, total, np.where(has_pay, partial, 0)).astype(np.int64)
        n_valid = np.where(has_pay, 1 + ((rng.random(n) < 0.25) & (paid >= 2)), 0)
        n_deleted = (has_pay & (rng.random(n) < 0.03)).astype(np.int64)
        count = n_valid + n_deleted
        pay_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(count, out=pay_start[1:])
        p = int(pay_start[-1])
        pay_inv = np.repeat(np.arange(n), count)
        within = np.arange(p) - pay_start[pay_inv]
        valid_p = n_valid[pay_inv]
        is_deleted = within >= valid_p
        paid_p = paid[pay_inv]
        first = np.clip(
            np.floor(paid_p * rng.uniform(0.3, 0.7, p)).astype(np.int64), 1, np.maximum(paid_p - 1, 1)
        )
        deleted_amount = np.clip(
            np.floor(total[pay_inv] * rng.uniform(0.1, 0.9, p)).astype(np.int64), 1, None
        )
        pay_amount = np.where(
            is_deleted,
            deleted_amount,
            np.where(valid_p == 1, paid_p, np.where(within == 0, first, paid_p - first[pay_start[pay_inv]])),
        ).astype(np.int64)
        gaps = rng.integers(0, 40, p) + np.where(within > 0, 1, 0)
        pay_day = np.minimum(
            self.inv_day[pay_inv] + _group_cumsum(gaps, pay_start[pay_inv]), self.end_day - 1
        )
        pay_ms = pay_day.astype(np.int64) * DAY_MS + rng.integers(9 * HOUR_MS, 17 * HOUR_MS, p)
        pay_ms = np.where(is_deleted, pay_ms + rng.integers(DAY_MS, 10 * DAY_MS, p), pay_ms)
        pay_ms = np.minimum(pay_ms, self.end_ms - 1 - rng.integers(0, HOUR_MS, p))
        self.pay_inv = pay_inv.astype(np.int32)
        self.pay_start = pay_start
        self.pay_amount = pay_amount
        self.pay_day = pay_day.astype(np.int32)
        self.pay_status = is_deleted.astype(np.int8)
        self.pay_reconciled = rng.random(p) < 0.7
        self.pay_bank = (
            self.bank_accounts[rng.integers(0, len(self.bank_accounts), p)]
            if len(self.bank_accounts)
            else np.zeros(p, dtype=np.int64)
        ).astype(np.int16)
        self.pay_ref = rng.integers(1000, 999_999, p)
        phi, plo = random_uuids(rng, p)
        self.payments = RecordIndex(phi, plo, pay_ms.astype(np.int64))

        created = day.astype(np.int64) * DAY_MS + rng.integers(8 * HOUR_MS, 18 * HOUR_MS, n)
        updated = created + rng.integers(0, 3 * DAY_MS, n)
        last_pay = np.zeros(n, dtype=np.int64)
        np.maximum.at(last_pay, pay_inv, pay_ms)
        updated = np.maximum(updated, last_pay + rng.integers(1, 2000, n))
        closed = (status == VOIDED) | (status == DELETED)
        updated = np.where(closed, updated + rng.integers(DAY_MS, 30 * DAY_MS, n), updated)
        updated = np.minimum(updated, self.end_ms - 1 - rng.integers(0, HOUR_MS, n))
        status[full] = PAID
        last_day = np.full(n, -1, dtype=np.int64)
        valid_idx = np.flatnonzero(~is_deleted)
        np.maximum.at(last_day, pay_inv[valid_idx], pay_day[valid_idx].astype(np.int64))
        self.inv_status = status
        self.inv_paid = paid
        self.inv_paid_day = np.where(full, last_day, -1).astype(np.int32)
        self.inv_sent = is_rec & (status != DRAFT) & (rng.random(n) < 0.8)
        self.inv_expected = np.where(
            is_rec & approved & ~full & (rng.random(n) < 0.15), self.inv_due + rng.integers(0, 20, n), -1
        ).astype(np.int32)
        self.inv_ref = np.where(rng.random(n) < 0.6, rng.integers(1000, 99_999, n), -1)
        self.inv_repeating = rng.random(n) < 0.05
        self.inv_attach = rng.random(n) < 0.05
        self.inv_url = rng.random(n) < 0.1
        self.invoices = RecordIndex(hi, lo, updated.astype(np.int64))
        self._build_currencies()

    def _build_currencies(self) -> None:
        """Put a share of invoices in the foreign currency, each with its rate and its payments' rates."""
        rng = _rng(self.cfg, self.index_no, 5)
        n, p = len(self.inv_type), len(self.pay_inv)
        self.foreign_currency, typical = FOREIGN_CURRENCY[self.country.currency]
        self.inv_foreign = rng.random(n) < self.cfg.foreign_currency_ratio
        #: ``CurrencyRate`` of each invoice and payment, six decimals (1.0 in the base currency).
        self.inv_rate = np.where(self.inv_foreign, np.round(typical * rng.uniform(0.95, 1.05, n), 6), 1.0)
        self.pay_rate = np.where(
            self.inv_foreign[self.pay_inv], np.round(typical * rng.uniform(0.95, 1.05, p), 6), 1.0
        )

    def invoice_currency(self, i: int) -> str:
        """Return the CurrencyCode of invoice ``i``."""
        return self.foreign_currency if self.inv_foreign[i] else self.country.currency

    def payment_bank_cents(self, j: int) -> int:
        """Return payment ``j``'s BankAmount in cents: its amount in the base currency at its rate."""
        return round(int(self.pay_amount[j]) / float(self.pay_rate[j]))

    # ------------------------------------------------------------------ rendering
    def account_record(self, i: int) -> dict[str, Any]:
        """Render account ``i`` as Xero serves it."""
        acc_type = self.acc_type[i]
        klass = ACCOUNT_CLASS[acc_type]
        tax = {"out": self.country.output_tax, "in": self.country.input_tax}.get(self.acc_tax[i], "NONE")
        rec: dict[str, Any] = {
            "AccountID": self.accounts.id_of(i),
            "Code": self.acc_code[i],
            "Name": self.acc_name[i],
            "Status": ACCOUNT_STATUSES[int(self.acc_status[i])],
            "Type": acc_type,
            "TaxType": tax,
            "Description": f"{self.acc_name[i]} ({klass.lower()})",
            "Class": klass,
            "EnablePaymentsToAccount": acc_type == "BANK",
            "ShowInExpenseClaims": klass == "EXPENSE",
            "BankAccountType": "BANK" if acc_type == "BANK" else "",
            "ReportingCode": f"{REPORTING[klass]}.{self.acc_code[i]}",
            "ReportingCodeName": REPORTING_NAME[klass],
            "HasAttachments": False,
            "UpdatedDateUTC": ms_date(self.accounts.updated_ms[i]),
            "AddToWatchlist": False,
        }
        if acc_type == "BANK":
            rec["BankAccountNumber"] = (
                f"{self.country.phone_country}-0{i + 1:03d}-0{int(self.accounts.lo[i]) % 10**7:07d}"
            )
            rec["CurrencyCode"] = self.country.currency
        if self.acc_system[i]:
            rec["SystemAccount"] = self.acc_system[i]
        return self._overlay("accounts", i, rec)

    def contact_name(self, i: int) -> tuple[str, str | None, str | None]:
        """Return (Name, FirstName, LastName) of contact ``i``."""
        k = int(self.con_name_key[i])
        if self.con_person[i]:
            first = FIRST_NAMES[k % 20]
            last = LAST_NAMES[(k // 20) % 20]
            rounds = k // 400
            return (f"{first} {last}" + (f" {rounds + 1}" if rounds else ""), first, last)
        rounds = k // (20 * 20 * 5)
        name = f"{ADJECTIVES[k % 20]} {NOUNS[(k // 20) % 20]} {SUFFIXES[(k // 400) % 5]}"
        return (name + (f" {rounds + 1}" if rounds else ""), None, None)

    def contact_record(self, i: int, detail: bool = True) -> dict[str, Any]:
        """Render contact ``i``; ``detail`` adds the fields Xero sends only when paged or fetched by id."""
        name, first, last = self.contact_name(i)
        slug = "".join(ch for ch in name.lower() if ch.isalnum())[:24]
        role = int(self.con_role[i])
        country = self.country
        rec: dict[str, Any] = {
            "ContactID": self.contacts.id_of(i),
            "ContactNumber": f"C{i + 1:06d}",
            "AccountNumber": f"{'CUS' if role != 1 else 'SUP'}-{i + 1:05d}",
            "ContactStatus": CONTACT_STATUSES[int(self.con_status[i])],
            "Name": name,
        }
        if first:
            rec["FirstName"] = first
            rec["LastName"] = last
        rec["EmailAddress"] = f"{slug}@example.com" if first else f"accounts@{slug}.example.com"
        rec["BankAccountDetails"] = ""
        if self.con_has_tax[i]:
            rec["TaxNumber"] = f"{int(self.con_tax_no[i]):08d}"
        if not first and self.con_has_tax[i]:
            rec["CompanyNumber"] = f"{int(self.con_tax_no[i]) % 10**7:07d}"
        rec["Addresses"] = [
            {
                "AddressType": "POBOX",
                "AddressLine1": f"PO Box {int(self.con_street[i]) * 7}",
                "City": country.city,
                "Region": country.region,
                "PostalCode": f"{6000 + i % 999}",
                "Country": country.code,
            },
            {
                "AddressType": "STREET",
                "AddressLine1": f"{int(self.con_street[i])} {STREETS[i % len(STREETS)]}",
                "City": country.city,
                "Region": country.region,
                "PostalCode": f"{6000 + i % 999}",
                "Country": country.code,
            },
        ]
        rec["Phones"] = [
            {
                "PhoneType": kind,
                "PhoneNumber": f"{int(self.con_phone[i]) + n}" if kind == "DEFAULT" else "",
                "PhoneAreaCode": "4" if kind == "DEFAULT" else "",
                "PhoneCountryCode": country.phone_country,
            }
            for n, kind in enumerate(("DEFAULT", "DDI", "FAX", "MOBILE"))
        ]
        rec["UpdatedDateUTC"] = ms_date(self.contacts.updated_ms[i])
        rec["IsSupplier"] = role != 0
        rec["IsCustomer"] = role != 1
        rec["DefaultCurrency"] = country.currency
        if not first:
            rec["Website"] = f"https://www.{slug}.example.com"
        if detail:
            if role != 1:
                rec["AccountsReceivableTaxType"] = country.output_tax
                rec["SalesDefaultAccountCode"] = (
                    self.acc_code[int(self.revenue_accounts[0])] if len(self.revenue_accounts) else "200"
                )
            if role != 0:
                rec["AccountsPayableTaxType"] = country.input_tax
                rec["PurchasesDefaultAccountCode"] = self.acc_code[int(self.con_purchase_acct[i])]
            if self.con_merged[i] >= 0:
                rec["MergedToContactID"] = self.contacts.id_of(int(self.con_merged[i]))
            rec["ContactGroups"] = []
            rec["ContactPersons"] = []
            rec["SalesTrackingCategories"] = []
            rec["PurchasesTrackingCategories"] = []
        rec["HasAttachments"] = False
        rec["HasValidationErrors"] = False
        return self._overlay("contacts", i, rec)

    def _contact_stub(self, i: int) -> dict[str, Any]:
        """Return the contact summary embedded in payments and in invoice summaries."""
        name = self.contact_name(i)[0]
        overlay = self.overrides["contacts"].get(i, {})
        return {
            "ContactID": self.contacts.id_of(i),
            "Name": overlay.get("Name", name),
            "HasValidationErrors": False,
        }

    def _contact_json(self, i: int) -> str:
        """Return the JSON of the contact embedded in detailed invoices, rendered once per change."""
        cached = self._stub_cache.get(i)
        if cached is None:
            version = self._stub_version
            cached = _ENCODE(self._full_stub(i)).decode()
            with self._stub_lock:
                if version == self._stub_version:  # no change raced the render
                    if len(self._stub_cache) >= _STUB_CACHE_SIZE:
                        self._stub_cache.clear()
                    self._stub_cache[i] = cached
        return cached

    def _full_stub(self, i: int) -> dict[str, Any]:
        full = self.contact_record(i, detail=False)
        keep = (
            "ContactID",
            "ContactNumber",
            "AccountNumber",
            "ContactStatus",
            "Name",
            "FirstName",
            "LastName",
            "EmailAddress",
            "Addresses",
            "Phones",
            "UpdatedDateUTC",
            "IsSupplier",
            "IsCustomer",
            "DefaultCurrency",
            "HasValidationErrors",
        )
        stub = {k: full[k] for k in keep if k in full}
        stub["ContactGroups"] = []
        stub["ContactPersons"] = []
        return stub

    def invoice_number(self, i: int) -> str:
        """Return the InvoiceNumber of invoice ``i``."""
        prefix = "INV" if self.inv_type[i] == 0 else "BILL"
        return f"{prefix}-{int(self.inv_number[i]):06d}"

    def invoice_record(self, i: int, detail: bool = True) -> dict[str, Any]:
        """Render invoice ``i`` as a dict (decoded from :meth:`invoices_json`, the one invoice renderer)."""
        record: dict[str, Any] = _DECODE(self.invoices_json([i], detail)[0])
        return record

    def invoices_json(self, positions: Sequence[int] | np.ndarray, detail: bool = True) -> list[msgspec.Raw]:
        """Render the invoices at ``positions`` as JSON, in order; ``detail`` adds line items, payments and
        the full contact.

        Every column is read once for the whole batch, and each invoice is assembled from f-strings, so a
        page of 1,000 costs no dict and no encoder pass. An invoice with overrides goes through a dict.
        """
        pos = np.asarray(positions, dtype=np.int64)
        line_items = self._line_items_json(pos) if detail else None
        columns = (
            self.inv_type,
            self.inv_number,
            self.inv_ref,
            self.inv_status,
            self.inv_sub_total,
            self.inv_total_tax,
            self.inv_paid,
            self.inv_attach,
            self.inv_sent,
            self.inv_repeating,
            self.inv_contact,
            self.inv_day,
            self.inv_due,
            self.inv_expected,
            self.inv_paid_day,
            self.inv_url,
            self.invoices.updated_ms,
            self.pay_start[:-1],
            self.pay_start[1:],
            self.inv_foreign,
            self.inv_rate,
        )
        currencies = (self.country.currency, self.foreign_currency)
        overrides = self.overrides["invoices"]
        rendered: list[msgspec.Raw] = []
        batch = zip(
            pos.tolist(),
            uuid_texts(self.invoices.hi[pos], self.invoices.lo[pos]),
            *(column[pos].tolist() for column in columns),
            strict=True,
        )
        for n, (
            i,
            invoice_id,
            kind,
            number,
            ref,
            status,
            sub_total,
            total_tax,
            paid,
            attach,
            sent,
            repeating,
            contact,
            day,
            due,
            expected,
            paid_day,
            url,
            updated,
            pay_first,
            pay_end,
            foreign,
            rate,
        ) in enumerate(batch):
            total = sub_total + total_tax
            due_amount = 0 if status in (VOIDED, DELETED) else total - paid
            invoice_number = f"{'INV' if kind == 0 else 'BILL'}-{number:06d}"
            parts = [
                f'{{"Type":"{INVOICE_TYPES[kind]}","InvoiceID":"{invoice_id}","InvoiceNumber":"{invoice_number}"'
            ]
            if ref >= 0:
                parts.append(f',"Reference":"{"PO" if kind == 0 else "Ref"}-{ref}"')
            if detail:
                payments = (
                    ",".join(
                        self._payment_json(j) for j in range(pay_first, pay_end) if self.pay_status[j] == 0
                    )
                    if pay_end > pay_first
                    else ""
                )
                parts.append(f',"Payments":[{payments}],"CreditNotes":[],"Prepayments":[],"Overpayments":[]')
            parts.append(
                f',"AmountDue":{money_json(due_amount)},"AmountPaid":{money_json(paid)},"AmountCredited":0.0'
                f',"CurrencyRate":{rate!r},"IsDiscounted":false,"HasAttachments":{_BOOLEAN[attach]},"HasErrors":false'
            )
            if kind == 0:
                parts.append(
                    f',"SentToContact":{_BOOLEAN[sent]},"BrandingThemeID":"{self.branding_theme_id}"'
                )
            if repeating:
                repeating_id = derived_uuid(self.cfg.seed, self.index_no, "repeat", contact)
                parts.append(f',"RepeatingInvoiceID":"{repeating_id}"')
            contact_json = (
                self._contact_json(contact) if detail else _ENCODE(self._contact_stub(contact)).decode()
            )
            parts.append(
                f',"Contact":{contact_json},"DateString":"{day_string(day)}","Date":"{day_date(day)}"'
                f',"DueDateString":"{day_string(due)}","DueDate":"{day_date(due)}"'
            )
            if expected >= 0:
                parts.append(
                    f',"ExpectedPaymentDate":"{day_date(expected)}","ExpectedPaymentDateString":"{day_string(expected)}"'
                )
            if paid_day >= 0 and status == PAID:
                parts.append(f',"FullyPaidOnDate":"{day_date(paid_day)}"')
            parts.append(f',"Status":"{INVOICE_STATUSES[status]}","LineAmountTypes":"Exclusive"')
            if line_items is not None:
                parts.append(f',"LineItems":{line_items[n]}')
            parts.append(
                f',"SubTotal":{money_json(sub_total)},"TotalTax":{money_json(total_tax)},"Total":{money_json(total)}'
                f',"UpdatedDateUTC":"{ms_date(updated)}","UpdatedDateUTCString":"{utc_string(updated)}"'
                f',"CurrencyCode":"{currencies[foreign]}"'
            )
            if url:
                parts.append(f',"Url":"https://orders.example.com/{invoice_number}"')
            parts.append("}")
            text = "".join(parts).encode()
            extra = overrides.get(i)
            if extra:
                record = _DECODE(text)
                record.update(extra)
                text = _ENCODE(record)
            rendered.append(msgspec.Raw(text))
        return rendered

    def _line_items_json(self, pos: np.ndarray) -> list[str]:
        """Return the ``LineItems`` array (JSON) of each invoice at ``pos``; line columns are read once."""
        first, end = self.line_start[pos], self.line_start[pos + 1]
        counts = end - first
        offsets = np.cumsum(counts) - counts  # where each invoice's lines start in this batch
        lines = np.arange(int(counts.sum())) + np.repeat(first - offsets, counts)
        tax_types = (
            ('"NONE"', _text(self.country.output_tax)),
            ('"NONE"', _text(self.country.input_tax)),
        )
        texts = []
        for line_id, kind, qty, unit, tax, taxable, account, description, item in zip(
            uuid_texts(self.line_hi[lines], self.line_lo[lines]),
            np.repeat(self.inv_type[pos], counts).tolist(),
            self.line_qty[lines].tolist(),
            self.line_unit[lines].tolist(),
            self.line_tax[lines].tolist(),
            self.line_taxable[lines].tolist(),
            self.line_acct[lines].tolist(),
            self.line_desc[lines].tolist(),
            self.line_item[lines].tolist(),
            strict=True,
        ):
            texts.append(
                f'{{"LineItemID":"{line_id}","Description":{_DESCRIPTIONS[kind][description]}'
                f',"Quantity":{qty}.0,"UnitAmount":{money_json(unit)},"TaxType":{tax_types[kind][taxable]}'
                f',"TaxAmount":{money_json(tax)},"LineAmount":{money_json(qty * unit)}'
                f',{self.acc_line_json[account]},"Tracking":[]{_ITEM_CODES[item] if item >= 0 else ""}}}'
            )
        return [
            "[" + ",".join(texts[o : o + c]) + "]"
            for o, c in zip(offsets.tolist(), counts.tolist(), strict=True)
        ]

    def _payment_json(self, j: int) -> str:
        """Return payment ``j`` as an invoice embeds it, as JSON."""
        return (
            f'{{"PaymentID":"{self.payments.id_of(j)}","Date":"{day_date(self.pay_day[j])}"'
            f',"Amount":{money_json(int(self.pay_amount[j]))},"Reference":"Payment {int(self.pay_ref[j])}"'
            f',"CurrencyRate":{float(self.pay_rate[j])!r},"HasAccount":false,"HasValidationErrors":false}}'
        )

    def payment_record(self, j: int, detail: bool = True) -> dict[str, Any]:
        """Render payment ``j`` as Xero serves it."""
        i = int(self.pay_inv[j])
        bank = int(self.pay_bank[j])
        inv_type = INVOICE_TYPES[int(self.inv_type[i])]
        updated = int(self.payments.updated_ms[j])
        amount = money(self.pay_amount[j])
        rec: dict[str, Any] = {
            "PaymentID": self.payments.id_of(j),
            "Date": day_date(self.pay_day[j]),
            "BankAmount": money(self.payment_bank_cents(j)),
            "Amount": amount,
            "Reference": f"Payment {int(self.pay_ref[j])}",
            "CurrencyRate": float(self.pay_rate[j]),
            "PaymentType": "ACCRECPAYMENT" if inv_type == "ACCREC" else "ACCPAYPAYMENT",
            "Status": PAYMENT_STATUSES[int(self.pay_status[j])],
            "UpdatedDateUTC": ms_date(updated),
            "UpdatedDateUTCString": utc_string(updated),
            "HasAccount": True,
            "IsReconciled": bool(self.pay_reconciled[j]),
            "Account": {"AccountID": self.accounts.id_of(bank), "Code": self.acc_code[bank]},
            "Invoice": {
                "Type": inv_type,
                "InvoiceID": self.invoices.id_of(i),
                "InvoiceNumber": self.invoice_number(i),
                "Payments": [],
                "CreditNotes": [],
                "Prepayments": [],
                "Overpayments": [],
                "IsDiscounted": False,
                "HasErrors": False,
                "Contact": self._contact_stub(int(self.inv_contact[i])),
                "CurrencyCode": self.invoice_currency(i),
            },
            "HasValidationErrors": False,
        }
        return self._overlay("payments", j, rec)

    def organisation_record(self) -> dict[str, Any]:
        """Render the organisation (tenant) itself (with the changes of :meth:`update_organisation`)."""
        c = self.country
        lock_day = self.end_day - 120
        rec = {
            "OrganisationID": self.tenant_id,
            "APIKey": derived_uuid(self.cfg.seed, self.index_no, "apikey").replace("-", "")[:30].upper(),
            "Name": self.name,
            "LegalName": f"{self.name} Limited",
            "PaysTax": True,
            "Version": c.version,
            "OrganisationType": "COMPANY",
            "BaseCurrency": c.currency,
            "CountryCode": c.code,
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "TaxNumber": f"{100 + self.index_no}-{200 + self.index_no}-{300 + self.index_no}",
            "FinancialYearEndDay": 31,
            "FinancialYearEndMonth": 3,
            "SalesTaxBasis": "INVOICE" if c.code != "GB" else "ACCRUALS",
            "SalesTaxPeriod": "TWOMONTHS" if c.code == "NZ" else "QUARTERLY1",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
            "PeriodLockDate": day_date(lock_day),
            "EndOfYearLockDate": day_date(lock_day - 60),
            "CreatedDateUTC": ms_date(self.created_ms),
            "OrganisationEntityType": "COMPANY",
            "Timezone": c.timezone,
            "ShortCode": f"!{derived_uuid(self.tenant_id)[:5]}",
            "Class": "PREMIUM",
            "Edition": "BUSINESS",
            "LineOfBusiness": "Professional services",
            "Addresses": [],
            "Phones": [],
            "ExternalLinks": [],
            "PaymentTerms": {},
        }
        return self._overlay("organisation", 0, rec)

    def update_organisation(self, fields: dict[str, Any]) -> None:
        """Change fields of the organisation (Xero field names); it has no UpdatedDateUTC to bump."""
        if "OrganisationID" in fields:
            raise ValueError("OrganisationID cannot change")
        self.overrides["organisation"].setdefault(0, {}).update(fields)

    def render(self, entity: str, pos: int, detail: bool = True) -> dict[str, Any]:
        """Render the record at ``pos`` of ``entity``."""
        if entity == "accounts":
            return self.account_record(pos)
        if entity == "contacts":
            return self.contact_record(pos, detail)
        if entity == "invoices":
            return self.invoice_record(pos, detail)
        if entity == "payments":
            return self.payment_record(pos, detail)
        if entity == "organisation":
            return self.organisation_record()
        raise ValueError(f"unknown entity {entity!r}")

    def render_page(
        self, entity: str, positions: Sequence[int] | np.ndarray, detail: bool = True
    ) -> list[Any]:
        """Render the records at ``positions`` for a response body: invoices as JSON (``msgspec.Raw``, which
        the app's encoder copies as is), the other collections as dicts."""
        if entity == "invoices":
            return list(self.invoices_json(positions, detail))
        return [self.render(entity, int(p), detail) for p in positions]

    def _overlay(self, entity: str, pos: int, rec: dict[str, Any]) -> dict[str, Any]:
        extra = self.overrides[entity].get(pos)
        if extra:
            rec.update(extra)
        return rec

    # ------------------------------------------------------------------ lookup
    def table(self, entity: str) -> RecordIndex:
        """Return the record index of ``entity``."""
        return {
            "accounts": self.accounts,
            "contacts": self.contacts,
            "invoices": self.invoices,
            "payments": self.payments,
        }[entity]

    def find(self, entity: str, key: str) -> int:
        """Return the position of the record with id ``key`` (or InvoiceNumber for invoices)."""
        pos = self.table(entity).find(key)
        if pos is None and entity == "invoices" and uuid_halves(key) is None:
            prefix, _, number = key.partition("-")
            if prefix in ("INV", "BILL") and number.isdigit():
                hits = np.flatnonzero(
                    (self.inv_type == (0 if prefix == "INV" else 1)) & (self.inv_number == int(number))
                )
                pos = int(hits[0]) if len(hits) else None
        if pos is None:
            raise NotFound(f"no {entity[:-1]} with id {key}")
        return pos

    # ------------------------------------------------------------------ changes
    def pick(self, entity: str, eligible: np.ndarray) -> int:
        """Pick one eligible position deterministically (per seed and call sequence)."""
        candidates = np.flatnonzero(eligible)
        if not len(candidates):
            raise LookupError(f"no {entity} eligible for this change")
        return int(candidates[int(self._pick_rng.integers(0, len(candidates)))])

    def touch(self, entity: str, pos: int, now_ms: int) -> None:
        """Set UpdatedDateUTC of a record to ``now_ms`` (moves it to the end of the default order)."""
        with self._stub_lock:  # every change passes here
            self._stub_version += 1
            self._stub_cache.clear()
        self.table(entity).touch(pos, now_ms)

    def update_invoice(self, pos: int, fields: dict[str, Any], now_ms: int) -> None:
        """Change fields of invoice ``pos`` (Xero field names) and bump its UpdatedDateUTC."""
        fields = dict(fields)
        if "Status" in fields:
            status = str(fields.pop("Status"))
            if status not in INVOICE_STATUSES:
                raise ValueError(f"unknown invoice Status {status!r}")
            code = INVOICE_STATUSES.index(status)
            if code in (PAID, VOIDED, DELETED) or int(self.inv_status[pos]) == PAID:
                raise ValueError("use void_invoice/delete_payment for status changes that move money")
            self.inv_status[pos] = code
        for key in ("DueDate", "Date", "ExpectedPaymentDate"):
            if key in fields and isinstance(fields[key], date):
                value = fields.pop(key)
                day = (value.date() if isinstance(value, datetime) else value).toordinal() - _EPOCH_ORDINAL
                if key == "DueDate":
                    self.inv_due[pos] = day
                elif key == "Date":
                    self.inv_day[pos] = day
                else:
                    self.inv_expected[pos] = day
        for key in (
            "Total",
            "SubTotal",
            "TotalTax",
            "AmountDue",
            "AmountPaid",
            "InvoiceID",
            "LineItems",
            "Payments",
        ):
            if key in fields:
                raise ValueError(f"{key} is derived and cannot be set directly")
        if fields:
            self.overrides["invoices"].setdefault(pos, {}).update(fields)
        self.touch("invoices", pos, now_ms)

    def void_invoice(self, pos: int, now_ms: int) -> None:
        """Void an AUTHORISED invoice without payments."""
        if int(self.inv_status[pos]) != AUTHORISED or int(self.inv_paid[pos]) != 0:
            raise ValueError("only AUTHORISED invoices without payments can be voided")
        self.inv_status[pos] = VOIDED
        self.touch("invoices", pos, now_ms)

    def voidable(self) -> np.ndarray:
        """Return the mask of invoices :meth:`void_invoice` accepts."""
        return (self.inv_status == AUTHORISED) & (self.inv_paid == 0)

    def delete_payment(self, j: int, now_ms: int) -> None:
        """Delete payment ``j``: its invoice's AmountPaid, AmountDue and Status follow."""
        if int(self.pay_status[j]) != 0:
            raise ValueError("payment is already DELETED")
        i = int(self.pay_inv[j])
        self.pay_status[j] = 1
        self.inv_paid[i] -= int(self.pay_amount[j])
        if int(self.inv_status[i]) == PAID:
            self.inv_status[i] = AUTHORISED
            self.inv_paid_day[i] = -1
        self.touch("payments", j, now_ms)
        self.touch("invoices", i, now_ms)

    def archive_contact(self, pos: int, now_ms: int) -> None:
        """Archive an ACTIVE contact."""
        if int(self.con_status[pos]) != 0:
            raise ValueError("contact is not ACTIVE")
        self.con_status[pos] = 1
        self.touch("contacts", pos, now_ms)

    def count(self, entity: str) -> int:
        """Return how many records ``entity`` holds (all statuses; one organisation)."""
        return 1 if entity == "organisation" else self.table(entity).n
