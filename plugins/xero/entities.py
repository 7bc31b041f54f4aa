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
    :param description: what the column holds, for analysts: written into the database as a column
        comment and into the data dictionary (``sql/README.md``).
    """

    name: str
    source: str
    kind: ColumnKind
    description: str = ""


@dataclass(frozen=True)
class Table:
    """A warehouse table. ``tenant_id`` is implicit: the first column and part of every key.

    :param description: what one row is, for analysts (the table comment and the data dictionary).
    """

    name: str
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str = ""

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


#: Descriptions of the columns every registry table carries besides its own (see ``xero.warehouse.ddl``).
STANDARD_COLUMNS: dict[str, str] = {
    "tenant_id": "Xero organisation (tenant) the row belongs to; part of every key (organisation.tenant_id)",
    "_raw": "the record's JSON exactly as Xero sent it, fields the registry does not type included",
    "_loaded_at": "when the warehouse last stored a change to this row (UTC)",
    "_run_id": "the pipeline run that last stored this row",
}

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
        description="the chart of accounts: one row per account per tenant, archived and deleted accounts included",
        primary_key=("account_id",),
        columns=(
            Column("account_id", "AccountID", "id", "Xero AccountID, unique within the tenant"),
            Column(
                "code",
                "Code",
                "string",
                "code shown in Xero (e.g. 200); unique per tenant among active accounts",
            ),
            Column("name", "Name", "string", "account name"),
            Column("type", "Type", "string", "Xero account type (REVENUE, EXPENSE, BANK, CURRENT, …)"),
            Column(
                "class", "Class", "string", "reporting class: ASSET, EQUITY, EXPENSE, LIABILITY or REVENUE"
            ),
            Column("status", "Status", "string", "ACTIVE, ARCHIVED or DELETED"),
            Column("description", "Description", "string", "account description"),
            Column("tax_type", "TaxType", "string", "default tax type of the account"),
            Column("currency_code", "CurrencyCode", "string", "currency of a bank account"),
            Column(
                "bank_account_number",
                "BankAccountNumber",
                "string",
                "bank account number (bank accounts only)",
            ),
            Column(
                "bank_account_type",
                "BankAccountType",
                "string",
                "BANK, CREDITCARD or PAYPAL (bank accounts only)",
            ),
            Column(
                "enable_payments_to_account",
                "EnablePaymentsToAccount",
                "boolean",
                "payments can be applied to this account",
            ),
            Column(
                "show_in_expense_claims",
                "ShowInExpenseClaims",
                "boolean",
                "the account is offered in expense claims",
            ),
            Column(
                "system_account",
                "SystemAccount",
                "string",
                "system role of the account (DEBTORS, CREDITORS, …), null for ordinary accounts",
            ),
            Column("reporting_code", "ReportingCode", "string", "reporting code"),
            Column("reporting_code_name", "ReportingCodeName", "string", "reporting code name"),
            Column("has_attachments", "HasAttachments", "boolean", "the account has attachments"),
            Column(
                "updated_date_utc",
                "UpdatedDateUTC",
                "timestamp",
                "last change in Xero (UTC); the sync's cursor",
            ),
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
        description="customers and suppliers: one row per contact per tenant, archived contacts included",
        primary_key=("contact_id",),
        columns=(
            Column("contact_id", "ContactID", "id", "Xero ContactID, unique within the tenant"),
            Column("contact_number", "ContactNumber", "string", "contact number from an external system"),
            Column(
                "account_number",
                "AccountNumber",
                "string",
                "the organisation's account number for the contact",
            ),
            Column("contact_status", "ContactStatus", "string", "ACTIVE, ARCHIVED or GDPRREQUEST"),
            Column("name", "Name", "string", "contact (organisation or person) name"),
            Column("first_name", "FirstName", "string", "first name of the primary person"),
            Column("last_name", "LastName", "string", "last name of the primary person"),
            Column("email_address", "EmailAddress", "string", "email address of the primary person"),
            Column("company_number", "CompanyNumber", "string", "company registration number"),
            Column("tax_number", "TaxNumber", "string", "tax number (ABN, GST number, VAT number, …)"),
            Column("is_supplier", "IsSupplier", "boolean", "the contact has bills"),
            Column("is_customer", "IsCustomer", "boolean", "the contact has sales invoices"),
            Column(
                "default_currency", "DefaultCurrency", "string", "default currency for the contact's invoices"
            ),
            Column(
                "accounts_receivable_tax_type",
                "AccountsReceivableTaxType",
                "string",
                "default tax type on sales to the contact",
            ),
            Column(
                "accounts_payable_tax_type",
                "AccountsPayableTaxType",
                "string",
                "default tax type on purchases from the contact",
            ),
            Column(
                "sales_default_account_code",
                "SalesDefaultAccountCode",
                "string",
                "default account code for sales to the contact",
            ),
            Column(
                "purchases_default_account_code",
                "PurchasesDefaultAccountCode",
                "string",
                "default account code for purchases from the contact",
            ),
            Column(
                "merged_to_contact_id",
                "MergedToContactID",
                "id",
                "the contact this one was merged into, if any",
            ),
            Column("website", "Website", "string", "website address"),
            Column("has_attachments", "HasAttachments", "boolean", "the contact has attachments"),
            Column(
                "updated_date_utc",
                "UpdatedDateUTC",
                "timestamp",
                "last change in Xero (UTC); the sync's cursor",
            ),
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
        description="sales invoices (ACCREC) and bills (ACCPAY): one row per invoice per tenant, every status included",
        primary_key=("invoice_id",),
        columns=(
            Column("invoice_id", "InvoiceID", "id", "Xero InvoiceID, unique within the tenant"),
            Column("type", "Type", "string", "ACCREC (sales invoice, receivable) or ACCPAY (bill, payable)"),
            Column("invoice_number", "InvoiceNumber", "string", "invoice number shown on the document"),
            Column("reference", "Reference", "string", "reference (sales invoices)"),
            Column("contact_id", "Contact.ContactID", "id", "the customer or supplier (contact.contact_id)"),
            Column("date", "Date", "date", "the invoice's date (organisation calendar date)"),
            Column("due_date", "DueDate", "date", "date payment is due"),
            Column(
                "expected_payment_date",
                "ExpectedPaymentDate",
                "date",
                "expected payment date (sales invoices)",
            ),
            Column("fully_paid_on_date", "FullyPaidOnDate", "date", "date the invoice was fully paid"),
            Column("status", "Status", "string", "DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED or DELETED"),
            Column(
                "line_amount_types",
                "LineAmountTypes",
                "string",
                "Exclusive, Inclusive or NoTax: whether line amounts include tax",
            ),
            Column("currency_code", "CurrencyCode", "string", "invoice currency"),
            Column(
                "currency_rate",
                "CurrencyRate",
                "rate",
                "units of invoice currency per unit of the organisation's base currency",
            ),
            Column("sub_total", "SubTotal", "money", "total excluding tax"),
            Column("total_tax", "TotalTax", "money", "total tax"),
            Column("total", "Total", "money", "total including tax"),
            Column("total_discount", "TotalDiscount", "money", "total of discounts applied to the lines"),
            Column("amount_due", "AmountDue", "money", "amount still to be paid"),
            Column("amount_paid", "AmountPaid", "money", "amount paid so far"),
            Column("amount_credited", "AmountCredited", "money", "amount credited by credit notes"),
            Column("sent_to_contact", "SentToContact", "boolean", "the invoice was sent to the contact"),
            Column("has_attachments", "HasAttachments", "boolean", "the invoice has attachments"),
            Column("is_discounted", "IsDiscounted", "boolean", "the invoice has a discount"),
            Column("branding_theme_id", "BrandingThemeID", "id", "branding theme used"),
            Column(
                "repeating_invoice_id",
                "RepeatingInvoiceID",
                "id",
                "the repeating invoice template this was created from",
            ),
            Column("url", "Url", "string", "URL of the source document"),
            Column(
                "updated_date_utc",
                "UpdatedDateUTC",
                "timestamp",
                "last change in Xero (UTC); the sync's cursor",
            ),
        ),
    ),
    children=(
        ChildTable(
            name="invoice_line_item",
            description="the lines of every invoice: one row per line per tenant, replaced whenever the invoice changes",
            source="LineItems",
            parent_key="invoice_id",
            primary_key=("invoice_id", "line_item_id"),
            columns=(
                Column("invoice_id", "InvoiceID", "id", "the invoice the line is on (invoice.invoice_id)"),
                Column("line_item_id", "LineItemID", "id", "Xero LineItemID, unique within the tenant"),
                Column("line_number", "_index", "integer", "1-based position of the line on the invoice"),
                Column("description", "Description", "string", "line description"),
                Column("quantity", "Quantity", "quantity", "quantity"),
                Column("unit_amount", "UnitAmount", "money", "price per unit"),
                Column("item_code", "ItemCode", "string", "code of the inventory item sold or bought"),
                Column("account_code", "AccountCode", "string", "code of the account the line is posted to"),
                Column(
                    "account_id",
                    "AccountID",
                    "id",
                    "id of the account the line is posted to (when Xero returns it)",
                ),
                Column("tax_type", "TaxType", "string", "tax type of the line"),
                Column("tax_amount", "TaxAmount", "money", "tax on the line"),
                Column(
                    "line_amount",
                    "LineAmount",
                    "money",
                    "line amount (includes tax when the invoice's line_amount_types is Inclusive)",
                ),
                Column("discount_rate", "DiscountRate", "rate", "discount percentage"),
                Column("discount_amount", "DiscountAmount", "money", "discount amount"),
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
        description="payments on invoices, credit notes, overpayments and prepayments: one row per payment per tenant",
        primary_key=("payment_id",),
        columns=(
            Column("payment_id", "PaymentID", "id", "Xero PaymentID, unique within the tenant"),
            Column(
                "payment_type",
                "PaymentType",
                "string",
                "ACCRECPAYMENT, ACCPAYPAYMENT, ARCREDITPAYMENT, APCREDITPAYMENT, … (what was paid)",
            ),
            Column("status", "Status", "string", "AUTHORISED or DELETED"),
            Column("date", "Date", "date", "date of the payment (organisation calendar date)"),
            Column("amount", "Amount", "money", "amount in the currency of the invoice or credit note paid"),
            Column("bank_amount", "BankAmount", "money", "amount in the currency of the bank account"),
            Column(
                "currency_rate",
                "CurrencyRate",
                "rate",
                "units of the document's currency per unit of base currency when the payment was made",
            ),
            Column("reference", "Reference", "string", "payment reference"),
            Column(
                "is_reconciled",
                "IsReconciled",
                "boolean",
                "the payment is reconciled against a bank statement line",
            ),
            Column("invoice_id", "Invoice.InvoiceID", "id", "the invoice paid, if any (invoice.invoice_id)"),
            Column("invoice_number", "Invoice.InvoiceNumber", "string", "number of the invoice paid"),
            Column(
                "credit_note_id", "CreditNote.CreditNoteID", "id", "the credit note paid or refunded, if any"
            ),
            Column("account_id", "Account.AccountID", "id", "the bank account the payment went through"),
            Column("account_code", "Account.Code", "string", "code of that bank account"),
            Column(
                "batch_payment_id",
                "BatchPaymentID",
                "id",
                "the batch payment this payment belongs to, if any",
            ),
            Column("has_account", "HasAccount", "boolean", "the payment has a bank account"),
            Column(
                "updated_date_utc",
                "UpdatedDateUTC",
                "timestamp",
                "last change in Xero (UTC); the sync's cursor",
            ),
        ),
    ),
)

ORGANISATION = Entity(
    name="organisation",
    path="Organisation",
    response_key="Organisations",
    id_field="OrganisationID",
    paged=False,
    modified_since=False,
    granular_scope="accounting.settings.read",
    broad_scope="accounting.settings.read",
    table=Table(
        name="organisation",
        description=(
            "the organisation (tenant) itself: one row per tenant, read whole on every run; its name and base "
            "currency label every mart"
        ),
        primary_key=("organisation_id",),
        columns=(
            Column("organisation_id", "OrganisationID", "id", "Xero OrganisationID (the same as tenant_id)"),
            Column("name", "Name", "string", "display name of the organisation shown in Xero"),
            Column("legal_name", "LegalName", "string", "legal name, shown on reports"),
            Column(
                "short_code",
                "ShortCode",
                "string",
                "Xero's short code of the organisation (used in deep links)",
            ),
            Column(
                "base_currency",
                "BaseCurrency",
                "string",
                "base currency: reports and *_base amounts are in it",
            ),
            Column("country_code", "CountryCode", "string", "country of the organisation (ISO 3166 alpha-2)"),
            Column("timezone", "Timezone", "string", "Xero time zone name (e.g. NEWZEALANDSTANDARDTIME)"),
            Column(
                "financial_year_end_day", "FinancialYearEndDay", "integer", "day of the financial year end"
            ),
            Column(
                "financial_year_end_month",
                "FinancialYearEndMonth",
                "integer",
                "month of the financial year end",
            ),
            Column(
                "organisation_type", "OrganisationType", "string", "COMPANY, SOLE_TRADER, CHARITY, TRUST, …"
            ),
            Column("organisation_entity_type", "OrganisationEntityType", "string", "legal entity type"),
            Column("organisation_status", "OrganisationStatus", "string", "ACTIVE when the API can reach it"),
            Column("version", "Version", "string", "Xero edition by region: AU, NZ, UK, US, GLOBAL, …"),
            Column("edition", "Edition", "string", "BUSINESS or PARTNER"),
            Column("class", "Class", "string", "Xero plan (STARTER, STANDARD, PREMIUM, …)"),
            Column("is_demo_company", "IsDemoCompany", "boolean", "the organisation is Xero's demo company"),
            Column("pays_tax", "PaysTax", "boolean", "registered with a tax authority"),
            Column("tax_number", "TaxNumber", "string", "tax number (GST, VAT, ABN, …) of the organisation"),
            Column("sales_tax_basis", "SalesTaxBasis", "string", "accounting basis of tax returns"),
            Column("sales_tax_period", "SalesTaxPeriod", "string", "how often tax returns are filed"),
            Column("default_sales_tax", "DefaultSalesTax", "string", "default line amount type of sales"),
            Column(
                "default_purchases_tax",
                "DefaultPurchasesTax",
                "string",
                "default line amount type of purchases",
            ),
            Column("period_lock_date", "PeriodLockDate", "date", "transactions up to this date are locked"),
            Column("end_of_year_lock_date", "EndOfYearLockDate", "date", "year-end lock date"),
            Column(
                "line_of_business", "LineOfBusiness", "string", "business type as set in the organisation"
            ),
            Column(
                "created_date_utc",
                "CreatedDateUTC",
                "timestamp",
                "when the organisation was created in Xero (UTC)",
            ),
        ),
    ),
)

#: Every entity the pipeline knows, by name, in dependency-friendly load order.
ENTITIES: dict[str, Entity] = {e.name: e for e in (ORGANISATION, ACCOUNTS, CONTACTS, INVOICES, PAYMENTS)}


def get_entity(name: str) -> Entity:
    """Return the entity called ``name`` or raise with the known names."""
    try:
        return ENTITIES[name]
    except KeyError:
        raise ValueError(f"unknown Xero entity {name!r}; known: {', '.join(ENTITIES)}") from None
