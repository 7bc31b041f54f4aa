"""Measure the transform step: landing pages → normalised Parquet → validated Parquet.

Builds ``--n`` invoices shaped like the ones Xero serves on a paged ``GET /Invoices`` (full contact,
payments, ``--lines`` line items each; see ``Invoice``/``LineItem`` in the Accounting OpenAPI spec),
writes them as 1,000-record landing pages exactly as the extract step does (compact JSON), then runs
:func:`xero.normalize.normalize_pages` and :func:`xero.validate.validate_tables`, each in its own
process, and prints records/s, the CPU seconds (all threads) and the peak RSS of each step::

    .venv/bin/python bench/transform_bench.py --n 200000
    .venv/bin/python bench/transform_bench.py --n 1000000 --bad-every 5000 --data-docs
    .venv/bin/python bench/transform_bench.py --dir /tmp/tb --reuse --steps validate --repeat 3

``--bad-every K`` spoils every K-th invoice (an unparsable date and an unknown status in turn) so
the quarantine paths are measured too. On a shared machine wall time is noisy: ``--repeat`` keeps
the fastest of several runs, and a CPU time far below the wall time means the step was waiting
for a core.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

TENANT = "4f7a3d1e-9b2c-4e8f-a1d5-6c3b2a1f0e9d"
PAGE_SIZE = 1000
DAY_MS = 86_400_000
START_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
DESCRIPTIONS = ("Consulting services", "Product sale", "Workshop", "Travel", "Support retainer", "Licence")
ACCOUNT_CODES = ("200", "260", "270", "400", "420", "310")
STATUSES = ("AUTHORISED", "AUTHORISED", "PAID", "PAID", "DRAFT", "SUBMITTED", "VOIDED")
CITIES = ("Wellington", "Auckland", "Christchurch", "Dunedin")


def _uuid(kind: int, number: int) -> str:
    return f"{number:08x}-{kind:04x}-4{number % 4096:03x}-a{number % 4093:03x}-{number * 2654435761 % 2**48:012x}"


def _ms_date(ms: int) -> str:
    return f"/Date({ms}+0000)/"


def _day_string(ms: int) -> str:
    return time.strftime("%Y-%m-%dT00:00:00", time.gmtime(ms // 1000))


def _contact(number: int) -> dict[str, Any]:
    name = f"Customer {number:05d} Ltd"
    city = CITIES[number % len(CITIES)]
    return {
        "ContactID": _uuid(2, number),
        "ContactNumber": f"C{number:06d}",
        "AccountNumber": f"CUS-{number:05d}",
        "ContactStatus": "ACTIVE",
        "Name": name,
        "EmailAddress": f"accounts@customer{number:05d}.example.com",
        "Addresses": [
            {
                "AddressType": "POBOX",
                "AddressLine1": f"PO Box {number % 9000 + 1000}",
                "City": city,
                "Region": "",
                "PostalCode": "6011",
                "Country": "NZ",
            },
            {
                "AddressType": "STREET",
                "AddressLine1": f"{number % 400 + 1} Church Lane",
                "City": city,
                "Region": "",
                "PostalCode": "6011",
                "Country": "NZ",
            },
        ],
        "Phones": [
            {"PhoneType": kind, "PhoneNumber": "4342545" if kind == "DEFAULT" else "", "PhoneAreaCode": "4"}
            for kind in ("DEFAULT", "DDI", "FAX", "MOBILE")
        ],
        "UpdatedDateUTC": _ms_date(START_MS - number * 1000),
        "IsSupplier": False,
        "IsCustomer": True,
        "DefaultCurrency": "NZD",
        "HasValidationErrors": False,
        "ContactGroups": [],
        "ContactPersons": [],
    }


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def invoice(number: int, rng: random.Random, lines: int, spoil: str | None = None) -> dict[str, Any]:
    """Return invoice ``number`` as Xero serves it on a paged list call (floats, like the extract).

    ``spoil`` breaks it: ``"date"`` (an unparsable due date) or ``"status"`` (an unknown status).
    """
    day = START_MS + rng.randrange(0, 700) * DAY_MS
    updated = START_MS + number * 37 + rng.randrange(0, 1000)
    status = STATUSES[rng.randrange(len(STATUSES))]
    items = []
    sub_total = total_tax = 0
    for line in range(lines):
        quantity = rng.randrange(1, 6)
        unit = rng.randrange(100, 50_000)
        amount = quantity * unit
        tax = amount * 15 // 100
        sub_total += amount
        total_tax += tax
        items.append(
            {
                "LineItemID": _uuid(3, number * 8 + line),
                "Description": DESCRIPTIONS[(number + line) % len(DESCRIPTIONS)],
                "Quantity": float(quantity),
                "UnitAmount": _money(unit),
                "TaxType": "OUTPUT2",
                "TaxAmount": _money(tax),
                "LineAmount": _money(amount),
                "AccountCode": ACCOUNT_CODES[line % len(ACCOUNT_CODES)],
                "AccountID": _uuid(4, line % len(ACCOUNT_CODES)),
                "Tracking": [],
            }
        )
    total = sub_total + total_tax
    paid = total if status == "PAID" else 0
    payments = (
        [
            {
                "PaymentID": _uuid(5, number),
                "Date": _ms_date(day + 7 * DAY_MS),
                "Amount": _money(paid),
                "Reference": f"Payment {number}",
                "CurrencyRate": 1.0,
                "HasAccount": False,
                "HasValidationErrors": False,
            }
        ]
        if paid
        else []
    )
    record: dict[str, Any] = {
        "Type": "ACCREC",
        "InvoiceID": _uuid(1, number),
        "InvoiceNumber": f"INV-{number:07d}",
        "Reference": f"PO-{rng.randrange(10_000, 99_999)}",
        "Payments": payments,
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": _money(total - paid),
        "AmountPaid": _money(paid),
        "AmountCredited": 0.0,
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "SentToContact": True,
        "BrandingThemeID": "a1c5e772-8b5a-4713-8d22-042f57b4849a",
        "Contact": _contact(number % 5000),
        "DateString": _day_string(day),
        "Date": _ms_date(day),
        "DueDateString": _day_string(day + 14 * DAY_MS),
        "DueDate": _ms_date(day + 14 * DAY_MS),
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "LineItems": items,
        "SubTotal": _money(sub_total),
        "TotalTax": _money(total_tax),
        "Total": _money(total),
        "UpdatedDateUTC": _ms_date(updated),
        "UpdatedDateUTCString": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(updated // 1000)),
        "CurrencyCode": "NZD",
    }
    if status == "PAID":
        record["FullyPaidOnDate"] = _ms_date(day + 7 * DAY_MS)
    if spoil == "date":
        record["DueDate"] = "/Date(not-a-date)/"
    elif spoil == "status":
        record["Status"] = "FROZEN"
    return record


def _spoil(number: int, bad_every: int) -> str | None:
    """Return how to spoil invoice ``number``: every ``bad_every``-th, a bad date and a bad status in turn."""
    if not bad_every or number % bad_every != bad_every - 1:
        return None
    return ("date", "status")[number // bad_every % 2]


def write_landing(landing: Path, n: int, lines: int, bad_every: int, seed: int = 7) -> int:
    """Write ``n`` invoices as 1,000-record pages like the extract step; return the bytes written."""
    rng = random.Random(seed)
    landing.mkdir(parents=True, exist_ok=True)
    written = 0
    for page, start in enumerate(range(0, n, PAGE_SIZE), start=1):
        records = [
            invoice(number, rng, lines, _spoil(number, bad_every))
            for number in range(start, min(start + PAGE_SIZE, n))
        ]
        text = json.dumps(records, separators=(",", ":"))
        (landing / f"page-{page:05d}.json").write_text(text)
        written += len(text)
    return written


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_step(step: str, work: Path, data_docs: bool) -> dict[str, Any]:
    """Run one step in this process and return its figures (called in a child process)."""
    if step == "normalize":
        from xero.normalize import landing_pages, normalize_pages

        def run() -> Any:
            return normalize_pages("invoices", TENANT, landing_pages(work / "landing"), work / "normalized")

    else:
        from xero.validate import _import_gx, validate_tables

        _import_gx()  # import time is a fixed cost per task, not per record: measured apart

        def run() -> Any:
            return validate_tables(
                "invoices",
                work / "normalized",
                work / "validated",
                max_bad_share=1.0,
                data_docs_dir=work / "data_docs" if data_docs else None,
            )

    started, cpu = time.perf_counter(), _cpu_seconds()
    result = run()
    return {
        "step": step,
        "records": result.records_seen if step == "normalize" else result.records,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu,
        "rows": result.rows,
        "quarantined": result.quarantined,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    """Generate landing pages, run normalize and validate in child processes and print the figures."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--n", type=int, default=200_000, help="invoices (default 200,000)")
    parser.add_argument("--lines", type=int, default=3, help="line items per invoice (default 3)")
    parser.add_argument("--bad-every", type=int, default=0, help="spoil every K-th invoice (0: none)")
    parser.add_argument("--data-docs", action="store_true", help="also build Great Expectations Data Docs")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one, removed)")
    parser.add_argument("--reuse", action="store_true", help="reuse landing pages already in --dir")
    parser.add_argument(
        "--steps", default="normalize,validate", help="steps to run (validate alone reuses --dir's output)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each step this many times and keep the fastest (shared machines)",
    )
    parser.add_argument("--step", choices=("normalize", "validate"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.step:  # child process
        print(json.dumps(run_step(args.step, args.dir, args.data_docs)))
        return 0

    work = args.dir or Path(tempfile.mkdtemp(prefix="transform-bench-"))
    try:
        if not (args.reuse and (work / "landing").is_dir()):
            shutil.rmtree(work / "landing", ignore_errors=True)
            started = time.perf_counter()
            size = write_landing(work / "landing", args.n, args.lines, args.bad_every)
            print(
                f"generated {args.n:,} invoices x {args.lines} lines: {size / 1e6:,.0f} MB of landing JSON "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
        figures = {}
        for step in args.steps.split(","):
            runs = [_run_child(step, work, args.data_docs) for _ in range(args.repeat)]
            figure = figures[step] = min(runs, key=lambda run: run["seconds"])
            print(
                f"{step:<9} {figure['records']:>10,} records in {figure['seconds']:7.2f} s "
                f"(CPU {figure['cpu_seconds']:6.2f} s) = {figure['records'] / figure['seconds']:>9,.0f} records/s, "
                f"peak RSS {max(run['peak_rss_mb'] for run in runs):6.0f} MB, rows {figure['rows']}, "
                f"quarantined {figure['quarantined']}",
                flush=True,
            )
        if len(figures) < 2:
            return 0
        seconds = figures["normalize"]["seconds"] + figures["validate"]["seconds"]
        records = figures["normalize"]["records"]
        print(
            f"{'together':<9} {records:>10,} records in {seconds:7.2f} s = {records / seconds:>9,.0f} records/s"
        )
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _run_child(step: str, work: Path, data_docs: bool) -> dict[str, Any]:
    """Run one step in a fresh interpreter (after clearing its output) and return its figures."""
    shutil.rmtree(work / ("normalized" if step == "normalize" else "validated"), ignore_errors=True)
    command = [sys.executable, __file__, "--step", step, "--dir", str(work)]
    if data_docs:
        command.append("--data-docs")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figure: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figure


if __name__ == "__main__":
    raise SystemExit(main())
