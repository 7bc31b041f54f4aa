"""The entity registry: what the pipeline reads from Xero and the tables it writes.

Everything entity-specific lives here as data: endpoint path, response key, identifier, cursor,
paging mode, If-Modified-Since support, ``includeArchived``, scopes, known enum values and the
typed columns of each warehouse table (parent and child). The client, the normaliser, the
validator, the warehouse and the sandbox all read this table; none of them hard-codes an entity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: How a column is typed: the normaliser parses to it, the warehouse maps it to SQL.
#: ``money`` is DECIMAL(19,4); ``rate`` is DECIMAL(28,10); ``date`` is an org-local calendar date
#: (Xero's midnight-UTC encoding, never shifted); ``timestamp`` is a UTC instant.
ColumnKind = Literal["id", "string", "money", "rate", "quantity", "date", "timestamp", "boolean", "integer"]


@dataclass(frozen=True)
class Column:
    """One typed warehouse column read from a Xero field.

    :param name: snake_case column name.
    :param source: Xero field name; dotted for a nested object (``Contact.ContactID``).
    :param kind: the column's type.
    """

    name: str
    source: str
    kind: ColumnKind


@dataclass(frozen=True)
class Table:
    """A warehouse table. ``tenant_id`` is implicit: the first column and part of every key."""

    name: str
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for candidate in self.columns:
            if candidate.name == name:
                return candidate
        raise KeyError(f"table {self.name!r} has no column {name!r}")


@dataclass(frozen=True)
class ChildTable(Table):
    """Rows nested in a parent record (an invoice's ``LineItems``).

    A parent's children are replaced as a whole whenever the parent is loaded, so a line removed in
    Xero disappears from the warehouse too.

    :param source: the parent's array field holding the children.
    :param parent_key: the column (also in ``columns``) that holds the parent's id.
    """

    source: str = ""
    parent_key: str = ""


@dataclass(frozen=True)
class Entity:
    """One Xero collection and how to read it.

    :param name: registry key, lower-case plural (``invoices``).
    :param path: endpoint path under ``/api.xro/2.0/``.
    :param response_key: the array's key in the response body.
    :param id_field: Xero's identifier field, the record key within a tenant.
    :param table: the parent table.
    :param children: child tables nested in each record.
    :param cursor_field: the field If-Modified-Since compares with; the watermark.
    :param paged: the endpoint takes ``page`` and ``pageSize`` (otherwise one call returns all).
    :param modified_since: the endpoint honours If-Modified-Since.
    :param include_archived: send ``includeArchived=true`` so status changes reach the warehouse.
    :param granular_scope: read scope for apps created since March 2026.
    :param broad_scope: read scope for older apps.
    :param enums: known values per column, for validation (unknown values are quarantined).
    """

    name: str
    path: str
    response_key: str
    id_field: str
    table: Table
    granular_scope: str
    broad_scope: str
    children: tuple[ChildTable, ...] = ()
    cursor_field: str = "UpdatedDateUTC"
    paged: bool = True
    modified_since: bool = True
    include_archived: bool = False
    enums: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def tables(self) -> tuple[Table, ...]:
        """Return the parent table followed by its children."""
        return (self.table, *self.children)


#: Largest page Xero serves on the paged endpoints (larger values are clamped to it).
MAX_PAGE_SIZE = 1000

ACCOUNT_TYPES = frozenset(
    "BANK CURRENT CURRLIAB DEPRECIATN DIRECTCOSTS EQUITY EXPENSE FIXED INVENTORY LIABILITY NONCURRENT "
    "OTHERINCOME OVERHEADS PREPAYMENT REVENUE SALES TERMLIAB PAYG".split()
)
INVOICE_TYPES = frozenset(
    "ACCPAY ACCPAYCREDIT APOVERPAYMENT APPREPAYMENT ACCREC ACCRECCREDIT AROVERPAYMENT ARPREPAYMENT".split()
)
PAYMENT_TYPES = frozenset(
    "ACCRECPAYMENT ACCPAYPAYMENT ARCREDITPAYMENT APCREDITPAYMENT AROVERPAYMENTPAYMENT ARPREPAYMENTPAYMENT "
    "APPREPAYMENTPAYMENT APOVERPAYMENTPAYMENT".split()
)

ACCOUNTS = Entity(
    name="accounts",
    path="Accounts",
    response_key="Accounts",
    id_field="AccountID",
    paged=False,
    granular_scope="accounting.settings.read",
    broad_scope="accounting.settings.read",
    enums={
        "type": ACCOUNT_TYPES,
        "status": frozenset({"ACTIVE", "ARCHIVED", "DELETED"}),
        "class": frozenset({"ASSET", "EQUITY", "EXPENSE", "LIABILITY", "REVENUE"}),
    },
    table=Table(
        name="account",
        primary_key=("account_id",),
        columns=(
            Column("account_id", "AccountID", "id"),
            Column("code", "Code", "string"),
            Column("name", "Name", "string"),
            Column("type", "Type", "string"),
            Column("class", "Class", "string"),
            Column("status", "Status", "string"),
            Column("description", "Description", "string"),
            Column("tax_type", "TaxType", "string"),
            Column("currency_code", "CurrencyCode", "string"),
            Column("bank_account_number", "BankAccountNumber", "string"),
            Column("bank_account_type", "BankAccountType", "string"),
            Column("enable_payments_to_account", "EnablePaymentsToAccount", "boolean"),
            Column("show_in_expense_claims", "ShowInExpenseClaims", "boolean"),
            Column("system_account", "SystemAccount", "string"),
            Column("reporting_code", "ReportingCode", "string"),
            Column("reporting_code_name", "ReportingCodeName", "string"),
            Column("has_attachments", "HasAttachments", "boolean"),
            Column("updated_date_utc", "UpdatedDateUTC", "timestamp"),
        ),
    ),
)

CONTACTS = Entity(
    name="contacts",
    path="Contacts",
    response_key="Contacts",
    id_field="ContactID",
    include_archived=True,
    granular_scope="accounting.contacts.read",
    broad_scope="accounting.contacts.read",
    enums={"contact_status": frozenset({"ACTIVE", "ARCHIVED", "GDPRREQUEST"})},
    table=Table(
        name="contact",
        primary_key=("contact_id",),
        columns=(
            Column("contact_id", "ContactID", "id"),
            Column("contact_number", "ContactNumber", "string"),
            Column("account_number", "AccountNumber", "string"),
            Column("contact_status", "ContactStatus", "string"),
            Column("name", "Name", "string"),
            Column("first_name", "FirstName", "string"),
            Column("last_name", "LastName", "string"),
            Column("email_address", "EmailAddress", "string"),
            Column("company_number", "CompanyNumber", "string"),
            Column("tax_number", "TaxNumber", "string"),
            Column("is_supplier", "IsSupplier", "boolean"),
            Column("is_customer", "IsCustomer", "boolean"),
            Column("default_currency", "DefaultCurrency", "string"),
            Column("accounts_receivable_tax_type", "AccountsReceivableTaxType", "string"),
            Column("accounts_payable_tax_type", "AccountsPayableTaxType", "string"),
            Column("sales_default_account_code", "SalesDefaultAccountCode", "string"),
            Column("purchases_default_account_code", "PurchasesDefaultAccountCode", "string"),
            Column("merged_to_contact_id", "MergedToContactID", "id"),
            Column("website", "Website", "string"),
            Column("has_attachments", "HasAttachments", "boolean"),
            Column("updated_date_utc", "UpdatedDateUTC", "timestamp"),
        ),
    ),
)

INVOICES = Entity(
    name="invoices",
    path="Invoices",
    response_key="Invoices",
    id_field="InvoiceID",
    include_archived=True,
    granular_scope="accounting.invoices.read",
    broad_scope="accounting.transactions.read",
    enums={
        "type": INVOICE_TYPES,
        "status": frozenset({"DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED"}),
        "line_amount_types": frozenset({"Exclusive", "Inclusive", "NoTax"}),
    },
    table=Table(
        name="invoice",
        primary_key=("invoice_id",),
        columns=(
            Column("invoice_id", "InvoiceID", "id"),
            Column("type", "Type", "string"),
            Column("invoice_number", "InvoiceNumber", "string"),
            Column("reference", "Reference", "string"),
            Column("contact_id", "Contact.ContactID", "id"),
            Column("date", "Date", "date"),
            Column("due_date", "DueDate", "date"),
            Column("expected_payment_date", "ExpectedPaymentDate", "date"),
            Column("fully_paid_on_date", "FullyPaidOnDate", "date"),
            Column("status", "Status", "string"),
            Column("line_amount_types", "LineAmountTypes", "string"),
            Column("currency_code", "CurrencyCode", "string"),
            Column("currency_rate", "CurrencyRate", "rate"),
            Column("sub_total", "SubTotal", "money"),
            Column("total_tax", "TotalTax", "money"),
            Column("total", "Total", "money"),
            Column("total_discount", "TotalDiscount", "money"),
            Column("amount_due", "AmountDue", "money"),
            Column("amount_paid", "AmountPaid", "money"),
            Column("amount_credited", "AmountCredited", "money"),
            Column("sent_to_contact", "SentToContact", "boolean"),
            Column("has_attachments", "HasAttachments", "boolean"),
            Column("is_discounted", "IsDiscounted", "boolean"),
            Column("branding_theme_id", "BrandingThemeID", "id"),
            Column("repeating_invoice_id", "RepeatingInvoiceID", "id"),
            Column("url", "Url", "string"),
            Column("updated_date_utc", "UpdatedDateUTC", "timestamp"),
        ),
    ),
    children=(
        ChildTable(
            name="invoice_line_item",
            source="LineItems",
            parent_key="invoice_id",
            primary_key=("invoice_id", "line_item_id"),
            columns=(
                Column("invoice_id", "InvoiceID", "id"),  # filled from the parent
                Column("line_item_id", "LineItemID", "id"),
                Column("line_number", "_index", "integer"),  # 1-based position in the invoice
                Column("description", "Description", "string"),
                Column("quantity", "Quantity", "quantity"),
                Column("unit_amount", "UnitAmount", "money"),
                Column("item_code", "ItemCode", "string"),
                Column("account_code", "AccountCode", "string"),
                Column("account_id", "AccountID", "id"),
                Column("tax_type", "TaxType", "string"),
                Column("tax_amount", "TaxAmount", "money"),
                Column("line_amount", "LineAmount", "money"),
                Column("discount_rate", "DiscountRate", "rate"),
                Column("discount_amount", "DiscountAmount", "money"),
            ),
        ),
    ),
)

PAYMENTS = Entity(
    name="payments",
    path="Payments",
    response_key="Payments",
    id_field="PaymentID",
    granular_scope="accounting.payments.read",
    broad_scope="accounting.transactions.read",
    enums={"status": frozenset({"AUTHORISED", "DELETED"}), "payment_type": PAYMENT_TYPES},
    table=Table(
        name="payment",
        primary_key=("payment_id",),
        columns=(
            Column("payment_id", "PaymentID", "id"),
            Column("payment_type", "PaymentType", "string"),
            Column("status", "Status", "string"),
            Column("date", "Date", "date"),
            Column("amount", "Amount", "money"),
            Column("bank_amount", "BankAmount", "money"),
            Column("currency_rate", "CurrencyRate", "rate"),
            Column("reference", "Reference", "string"),
            Column("is_reconciled", "IsReconciled", "boolean"),
            Column("invoice_id", "Invoice.InvoiceID", "id"),
            Column("invoice_number", "Invoice.InvoiceNumber", "string"),
            Column("credit_note_id", "CreditNote.CreditNoteID", "id"),
            Column("account_id", "Account.AccountID", "id"),
            Column("account_code", "Account.Code", "string"),
            Column("batch_payment_id", "BatchPaymentID", "id"),
            Column("has_account", "HasAccount", "boolean"),
            Column("updated_date_utc", "UpdatedDateUTC", "timestamp"),
        ),
    ),
)

#: Every entity the pipeline knows, by name, in dependency-friendly load order.
ENTITIES: dict[str, Entity] = {e.name: e for e in (ACCOUNTS, CONTACTS, INVOICES, PAYMENTS)}


def get_entity(name: str) -> Entity:
    """Return the entity called ``name`` or raise with the known names."""
    try:
        return ENTITIES[name]
    except KeyError:
        raise ValueError(f"unknown Xero entity {name!r}; known: {', '.join(ENTITIES)}") from None
