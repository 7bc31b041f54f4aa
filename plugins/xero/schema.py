"""Arrow schemas of the typed tables: the contract between the normaliser and the warehouse.

The normaliser writes Parquet files with exactly these schemas; the warehouse reads them and maps
the same column kinds to SQL types. Imported only inside tasks (pyarrow is not a parse-time import).
"""

from __future__ import annotations

import pyarrow as pa

from xero.entities import ColumnKind, Table

#: Arrow type of each column kind. Money and rates stay exact decimals end to end.
ARROW_TYPES: dict[ColumnKind, pa.DataType] = {
    "id": pa.string(),
    "string": pa.string(),
    "money": pa.decimal128(19, 4),
    "rate": pa.decimal128(28, 10),
    "quantity": pa.decimal128(19, 4),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
    "integer": pa.int64(),
}

#: Columns every typed table carries besides its own: the tenant first, then bookkeeping.
#: ``_seq`` orders rows by extraction (later wins when a record was read twice in one run);
#: a child row carries its parent's ``_seq``.
TENANT_FIELD = pa.field("tenant_id", pa.string(), nullable=False)
BOOKKEEPING_FIELDS = (pa.field("_raw", pa.string()), pa.field("_seq", pa.int64()))

#: Rows that failed parsing or validation, with the reason, kept rather than dropped.
QUARANTINE_SCHEMA = pa.schema(
    [
        TENANT_FIELD,
        pa.field("entity", pa.string(), nullable=False),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("record_id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("_raw", pa.string()),
        pa.field("_seq", pa.int64()),
    ]
)


def arrow_schema(table: Table) -> pa.Schema:
    """Return the Arrow schema of ``table``'s Parquet files."""
    fields = [TENANT_FIELD]
    fields += [pa.field(column.name, ARROW_TYPES[column.kind]) for column in table.columns]
    fields += BOOKKEEPING_FIELDS
    return pa.schema(fields)
