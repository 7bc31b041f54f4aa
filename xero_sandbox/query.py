"""List queries over an organisation: If-Modified-Since, filters, paging, detail level.

Xero's rules as the sandbox applies them: the default order is ``UpdatedDateUTC ASC, <ID> ASC``;
``page`` is 1-based and ``pageSize`` defaults to 100 and is clamped to 1..1000; a paged call (or
``Statuses``/``summaryOnly`` on Invoices, which enforce paging) carries ``pagination`` and, except
with ``summaryOnly``, full detail (line items, payments, contact details); an unpaged call returns
every match as summaries and is rejected above the high-volume threshold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import numpy as np

from xero_sandbox.data import (
    ACCOUNT_CLASS,
    CONTACT_STATUSES,
    INVOICE_STATUSES,
    INVOICE_TYPES,
    PAYMENT_STATUSES,
    Organisation,
    as_dicts,
)
from xero_sandbox.index import Selection, uuid_halves

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
PAGED = frozenset({"contacts", "invoices", "payments"})
ID_FIELD = {
    "accounts": "AccountID",
    "contacts": "ContactID",
    "invoices": "InvoiceID",
    "payments": "PaymentID",
}

#: Contact fields an unpaged list leaves out (Xero sends them only when paged or fetched by id).
_CLAUSE = re.compile(
    r"^\s*(?P<field>[A-Za-z]+(?:\.[A-Za-z]+)?)\s*(?P<op>==|!=)\s*"
    r'(?:"(?P<text>[^"]*)"|(?P<bool>true|false)|[Gg]uid\("(?P<guid>[^"]*)"\))\s*$'
)
_AND = re.compile(r"\s+(?:AND|&&)\s+", re.IGNORECASE)
_ORDER = re.compile(r"^\s*UpdatedDateUTC(\s+ASC)?(\s*,\s*[A-Za-z]+ID(\s+ASC)?)?\s*$", re.IGNORECASE)


class QueryError(ValueError):
    """The request cannot be served as asked (answered with a 400 validation error)."""


@dataclass
class ListResult:
    """What a list call returns: rendered records and the pagination block (paged calls only).

    Records are as :meth:`~xero_sandbox.data.Organisation.render_page` returns them (invoices as JSON).
    """

    records: list[Any]
    pagination: dict[str, int] | None
    selection: Selection
    offset: int
    page_size: int


def parse_if_modified_since(value: str | None) -> int | None:
    """Return the If-Modified-Since bound in Unix ms, truncated to the second, or ``None``.

    Accepts ``YYYY-MM-DDTHH:MM:SS`` with optional fraction and offset (naive means UTC) and RFC 1123.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        try:
            instant = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise QueryError(f"If-Modified-Since is not a valid date: {value!r}") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return math.floor(instant.timestamp()) * 1000


def _flag(params: dict[str, str], name: str) -> bool:
    return params.get(name, "").strip().lower() == "true"


def _int_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw!r}") from None


def _where_mask(org: Organisation, entity: str, where: str) -> Callable[[np.ndarray], np.ndarray]:
    tests: list[Callable[[np.ndarray], np.ndarray]] = []
    for clause in _AND.split(where.strip()):
        m = _CLAUSE.match(clause)
        if not m:
            raise QueryError(
                f'the sandbox supports only Field=="value" clauses joined by AND in where: {clause!r}'
            )
        field_name, op = m.group("field"), m.group("op")
        value = m.group("text") if m.group("text") is not None else (m.group("bool") or m.group("guid"))
        tests.append(_clause_test(org, entity, field_name, op == "!=", value))

    def mask(pos: np.ndarray) -> np.ndarray:
        keep = np.ones(len(pos), dtype=bool)
        for test in tests:
            keep &= test(pos)
        return keep

    return mask


def _code_test(column: np.ndarray, names: tuple[str, ...], value: str, negate: bool) -> Callable:
    code = names.index(value) if value in names else -1

    def test(pos: np.ndarray) -> np.ndarray:
        hit = column[pos] == code
        return ~hit if negate else hit

    return test


def _clause_test(org: Organisation, entity: str, field_name: str, negate: bool, value: str) -> Callable:
    key = (entity, field_name.lower())
    if key == ("invoices", "status"):
        return _code_test(org.inv_status, INVOICE_STATUSES, value, negate)
    if key == ("invoices", "type"):
        return _code_test(org.inv_type, INVOICE_TYPES, value, negate)
    if key == ("invoices", "contact.contactid"):
        target = org.contacts.find(value)
        return (
            _code_test(org.inv_contact, (), "", negate)
            if target is None
            else _eq(org.inv_contact, target, negate)
        )
    if key == ("contacts", "contactstatus"):
        return _code_test(org.con_status, CONTACT_STATUSES, value, negate)
    if key in (("contacts", "iscustomer"), ("contacts", "issupplier")):
        other = 1 if key[1] == "iscustomer" else 0
        want = value.lower() == "true"
        return lambda pos: ((org.con_role[pos] != other) == want) ^ negate
    if key == ("payments", "status"):
        return _code_test(org.pay_status, PAYMENT_STATUSES, value, negate)
    if key == ("payments", "paymenttype"):
        names = ("ACCRECPAYMENT", "ACCPAYPAYMENT")
        code = names.index(value) if value in names else -1
        return lambda pos: (org.inv_type[org.pay_inv[pos]] == code) ^ negate
    if entity == "accounts" and key[1] in ("status", "type", "class"):
        values = {
            "status": [org.account_record(i)["Status"] for i in range(org.accounts.n)],
            "type": org.acc_type,
            "class": [ACCOUNT_CLASS[t] for t in org.acc_type],
        }[key[1]]
        column = np.array(values)
        return lambda pos: (column[pos] == value) ^ negate
    raise QueryError(f"the sandbox cannot filter {entity} on {field_name!r}")


def _eq(column: np.ndarray, target: int, negate: bool) -> Callable:
    return lambda pos: (column[pos] == target) ^ negate


def _list_mask(org: Organisation, entity: str, params: dict[str, str]) -> Callable | None:
    masks: list[Callable[[np.ndarray], np.ndarray]] = []
    if entity == "contacts" and not _flag(params, "includeArchived"):
        masks.append(lambda pos: org.con_status[pos] == 0)
    if params.get("where", "").strip():
        masks.append(_where_mask(org, entity, params["where"]))
    if entity == "invoices" and params.get("Statuses", "").strip():
        wanted = [s.strip().strip('"') for s in params["Statuses"].split(",") if s.strip()]
        codes = [INVOICE_STATUSES.index(s) for s in wanted if s in INVOICE_STATUSES]
        masks.append(lambda pos: np.isin(org.inv_status[pos], codes))
    if entity == "invoices" and params.get("ContactIDs", "").strip():
        targets = [org.contacts.find(s) for s in params["ContactIDs"].split(",")]
        wanted_contacts = [t for t in targets if t is not None]
        masks.append(lambda pos: np.isin(org.inv_contact[pos], wanted_contacts))
    if params.get("IDs", "").strip():
        table = org.table(entity)
        found = [table.find(s) for s in params["IDs"].split(",") if uuid_halves(s) is not None]
        wanted_ids = [p for p in found if p is not None]
        masks.append(lambda pos: np.isin(pos, wanted_ids))
    if not masks:
        return None

    def combined(pos: np.ndarray) -> np.ndarray:
        keep = np.ones(len(pos), dtype=bool)
        for mask in masks:
            keep &= mask(pos)
        return keep

    return combined


def list_records(
    org: Organisation,
    entity: str,
    params: dict[str, str],
    since_ms: int | None,
    *,
    threshold: int,
    before_page: Callable[[Selection, int, int], None] | None = None,
) -> ListResult:
    """Serve one list call of ``entity`` (records rendered, pagination when paged).

    :param org: the tenant's data.
    :param entity: registry name (``invoices``).
    :param params: the query parameters.
    :param since_ms: If-Modified-Since bound in ms (inclusive), or ``None``.
    :param threshold: largest unpaged result served (Xero's high-volume rule).
    :param before_page: hook called with (selection, offset, page_size) before rendering a paged call;
        it may change data, after which the selection is recomputed.
    """
    order = params.get("order")
    if order and not _ORDER.match(order):
        raise QueryError(
            f"the sandbox serves only the default order (UpdatedDateUTC ASC); got order={order!r}"
        )
    page = _int_param(params, "page")
    summary_only = entity in ("invoices", "contacts") and _flag(params, "summaryOnly")
    paged = entity in PAGED and (
        page is not None
        or summary_only
        or (entity == "invoices" and bool(params.get("Statuses", "").strip()))
    )
    mask = _list_mask(org, entity, params)
    selection = org.table(entity).select(since_ms, mask)
    if not paged:
        if entity in PAGED and selection.total > threshold:
            raise QueryError(
                f"Your request is not filtering {entity.capitalize()} efficiently, given the extremely high "
                "volume for this organisation. Please use paging."
            )
        positions = selection.slice(0, selection.total)
        detail = entity not in ("contacts", "invoices")
        records = org.render_page(entity, positions, detail)
        return ListResult(records, None, selection, 0, selection.total)
    page = max(page or 1, 1)
    size = _int_param(params, "pageSize")
    size = DEFAULT_PAGE_SIZE if size is None else min(max(size, 1), MAX_PAGE_SIZE)
    offset = (page - 1) * size
    if before_page is not None:
        before_page(selection, offset, size)
        selection = org.table(entity).select(since_ms, mask)
    positions = selection.slice(offset, size)
    records = org.render_page(entity, positions, not summary_only)
    if summary_only:
        records = [_summarise(entity, rec) for rec in as_dicts(records)]
    total = selection.total
    pagination = {"page": page, "pageSize": size, "pageCount": math.ceil(total / size), "itemCount": total}
    return ListResult(records, pagination, selection, offset, size)


_SUMMARY_DROP = {
    "invoices": (
        "Payments",
        "HasAttachments",
        "LineItems",
        "CISDeduction",
        "CreditNotes",
        "Prepayments",
        "Overpayments",
    ),
    "contacts": (
        "Addresses",
        "Balances",
        "ContactGroups",
        "ContactPersons",
        "IsCustomer",
        "IsSupplier",
        "PurchasesDefaultAccountCode",
        "SalesDefaultAccountCode",
        "PurchasesTrackingCategories",
        "SalesTrackingCategories",
    ),
}


def _summarise(entity: str, rec: dict[str, Any]) -> dict[str, Any]:
    for key in _SUMMARY_DROP.get(entity, ()):
        rec.pop(key, None)
    return rec
