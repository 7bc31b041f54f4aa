"""Hand-built Xero records (shaped like the OpenAPI examples) and landing-page helpers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"

ACCOUNT: dict[str, Any] = {
    "AccountID": "ebd06280-af70-4bed-97c6-7451a454ad85",
    "Code": "090",
    "Name": "Business Bank Account",
    "Status": "ACTIVE",
    "Type": "BANK",
    "TaxType": "NONE",
    "Class": "ASSET",
    "EnablePaymentsToAccount": False,
    "ShowInExpenseClaims": False,
    "BankAccountNumber": "0209087654321050",
    "BankAccountType": "BANK",
    "CurrencyCode": "NZD",
    "ReportingCode": "ASS",
    "ReportingCodeName": "Assets",
    "HasAttachments": False,
    "UpdatedDateUTC": "/Date(1573755038314+0000)/",
    "AddToWatchlist": False,
}

CONTACT: dict[str, Any] = {
    "ContactID": "430fa14a-f945-44d3-9f97-5df5e28441b8",
    "ContactStatus": "ACTIVE",
    "Name": "ABC Limited",
    "FirstName": "Andrea",
    "LastName": "Dutchess",
    "EmailAddress": "a.dutchess@abclimited.com",
    "BankAccountDetails": "",
    "Addresses": [{"AddressType": "STREET", "City": "", "Region": "", "PostalCode": "", "Country": ""}],
    "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "847-1294", "PhoneAreaCode": "(626)"}],
    "UpdatedDateUTC": "/Date(1551399321043+0000)/",
    "ContactGroups": [],
    "IsSupplier": False,
    "IsCustomer": True,
    "DefaultCurrency": "NZD",
    "HasAttachments": False,
    "HasValidationErrors": False,
}

INVOICE: dict[str, Any] = {
    "Type": "ACCREC",
    "InvoiceID": "243216c5-369e-4056-ac67-05388f86dc81",
    "InvoiceNumber": "INV-0001",
    "Reference": "Ref MK815",
    "Prepayments": [],
    "Overpayments": [],
    "AmountDue": 115.00,
    "AmountPaid": 0.00,
    "SentToContact": False,
    "CurrencyRate": 1.000000,
    "IsDiscounted": False,
    "HasAttachments": False,
    "HasErrors": False,
    "Contact": {"ContactID": "430fa14a-f945-44d3-9f97-5df5e28441b8", "Name": "ABC Limited"},
    "DateString": "2018-10-20T00:00:00",
    "Date": "/Date(1539993600000+0000)/",
    "DueDateString": "2018-12-20T00:00:00",
    "DueDate": "/Date(1545264000000+0000)/",
    "Status": "AUTHORISED",
    "LineAmountTypes": "Exclusive",
    "LineItems": [
        {
            "Description": "Consulting services",
            "UnitAmount": 40.00,
            "TaxType": "OUTPUT2",
            "TaxAmount": 6.00,
            "LineAmount": 40.00,
            "AccountCode": "200",
            "Tracking": [],
            "Quantity": 1.0000,
            "LineItemID": "5f7a612b-fdcc-4d33-90fa-a9f6bc6db32f",
        },
        {
            "Description": "Travel",
            "UnitAmount": 30.00,
            "TaxType": "OUTPUT2",
            "TaxAmount": 9.00,
            "LineAmount": 60.00,
            "AccountCode": "200",
            "Tracking": [],
            "Quantity": 2.0000,
            "LineItemID": "d2a06879-da49-4d6c-83b5-72a93a523ec6",
        },
    ],
    "SubTotal": 100.00,
    "TotalTax": 15.00,
    "Total": 115.00,
    "UpdatedDateUTC": "/Date(1573755038314+0000)/",
    "CurrencyCode": "NZD",
}

PAYMENT: dict[str, Any] = {
    "PaymentID": "99ea7f6b-c7ab-4ab7-b8d9-6b4a7d0b0a4e",
    "Date": "/Date(1552521600000+0000)/",
    "BankAmount": 115.00,
    "Amount": 115.00,
    "Reference": "Paid in full",
    "CurrencyRate": 1.000000,
    "PaymentType": "ACCRECPAYMENT",
    "Status": "AUTHORISED",
    "UpdatedDateUTC": "/Date(1552537211350+0000)/",
    "HasAccount": True,
    "IsReconciled": False,
    "Account": {"AccountID": "ebd06280-af70-4bed-97c6-7451a454ad85", "Code": "090"},
    "Invoice": {
        "Type": "ACCREC",
        "InvoiceID": "243216c5-369e-4056-ac67-05388f86dc81",
        "InvoiceNumber": "INV-0001",
        "Payments": [],
        "CreditNotes": [],
        "HasErrors": False,
    },
    "HasValidationErrors": False,
}

ORGANISATION: dict[str, Any] = {
    "APIKey": "CTJ60UH519MXQIXEJSDPDALS3EOZ5Y",
    "Name": "Dev Evangelist - Sid Test 3 (NZ-2016-02)",
    "LegalName": "Dev Evangelist - Sid Test 3 (NZ-2016-02)",
    "PaysTax": True,
    "Version": "NZ",
    "OrganisationType": "COMPANY",
    "BaseCurrency": "NZD",
    "CountryCode": "NZ",
    "IsDemoCompany": False,
    "OrganisationStatus": "ACTIVE",
    "TaxNumber": "071-138-054",
    "FinancialYearEndDay": 31,
    "FinancialYearEndMonth": 3,
    "SalesTaxBasis": "PAYMENTS",
    "SalesTaxPeriod": "TWOMONTHS",
    "DefaultSalesTax": "Tax Exclusive",
    "DefaultPurchasesTax": "Tax Exclusive",
    "PeriodLockDate": "/Date(1546214400000+0000)/",
    "EndOfYearLockDate": "/Date(1546214400000+0000)/",
    "CreatedDateUTC": "/Date(1455827393000)/",
    "OrganisationEntityType": "COMPANY",
    "Timezone": "NEWZEALANDSTANDARDTIME",
    "ShortCode": "!mBdtL",
    "OrganisationID": "b2c885a9-4bb9-4a00-9b6e-6c2bf60b1a2b",
    "Edition": "BUSINESS",
    "Class": "PREMIUM",
    "Addresses": [],
    "Phones": [],
    "ExternalLinks": [],
    "PaymentTerms": {},
}

RECORDS = {
    "organisation": ORGANISATION,
    "accounts": ACCOUNT,
    "contacts": CONTACT,
    "invoices": INVOICE,
    "payments": PAYMENT,
}
ID_FIELDS = {
    "organisation": "OrganisationID",
    "accounts": "AccountID",
    "contacts": "ContactID",
    "invoices": "InvoiceID",
    "payments": "PaymentID",
}


def record(entity: str, number: int = 0, **changes: Any) -> dict[str, Any]:
    """Return a deep copy of the entity's sample record with a distinct id and ``changes`` applied."""
    data = copy.deepcopy(RECORDS[entity])
    if number:
        original = data[ID_FIELDS[entity]]
        data[ID_FIELDS[entity]] = f"{original[:-8]}{number:08d}"
        if entity == "invoices":
            for item in data["LineItems"]:
                item["LineItemID"] = f"{item['LineItemID'][:-8]}{number:08d}"
    for key, value in changes.items():
        if value is _DELETE:
            data.pop(key, None)
        else:
            data[key] = value
    return data


_DELETE = object()


@pytest.fixture
def delete() -> object:
    """Marker for :func:`record` changes that removes a field."""
    return _DELETE


@pytest.fixture
def write_pages(tmp_path: Path) -> Callable[..., list[Path]]:
    """Return a function writing pages (lists of records, or raw JSON text) as landing files."""

    def write(*pages: list[dict[str, Any]] | str, directory: str = "landing") -> list[Path]:
        landing = tmp_path / directory
        landing.mkdir(exist_ok=True)
        paths = []
        for number, page in enumerate(pages, start=1):
            path = landing / f"page-{number:05d}.json"
            path.write_text(page if isinstance(page, str) else json.dumps(page), encoding="utf-8")
            paths.append(path)
        return paths

    return write


@pytest.fixture
def make() -> Callable[..., dict[str, Any]]:
    """Return :func:`record`, the sample-record builder."""
    return record
