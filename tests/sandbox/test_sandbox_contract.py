"""Response bodies validate against Xero's OpenAPI documents and carry every field the pipeline reads."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from xero.entities import ENTITIES

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "xero-openapi"
if not SPEC_DIR.exists():  # CI lays shared/ beside the clone
    SPEC_DIR = Path("/work/shared/xero-openapi")
#: Sources Xero sends only for kinds of records the sandbox does not generate.
NOT_GENERATED = {
    "CreditNote.CreditNoteID",
    "BatchPaymentID",
    "TotalDiscount",
    "DiscountRate",
    "DiscountAmount",
}


@cache
def _spec(name: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SPEC_DIR / name) as fh:
        return yaml.load(fh, Loader=loader)


def _validate(spec_name: str, schema: dict[str, Any], body: Any) -> None:
    spec = _spec(spec_name)
    OAS30Validator({**schema, "components": spec["components"]}).validate(body)


def _accounting(body: Any, component: str) -> None:
    _validate("xero_accounting.yaml", {"$ref": f"#/components/schemas/{component}"}, body)


@pytest.mark.parametrize(
    ("path", "params", "component"),
    [
        pytest.param("Accounts", {}, "Accounts", id="accounts"),
        pytest.param("Contacts", {}, "Contacts", id="contacts-unpaged"),
        pytest.param("Contacts", {"page": 1, "includeArchived": "true"}, "Contacts", id="contacts-paged"),
        pytest.param("Invoices", {}, "Invoices", id="invoices-unpaged"),
        pytest.param("Invoices", {"page": 2, "pageSize": 100}, "Invoices", id="invoices-paged"),
        pytest.param("Invoices", {"page": 1, "summaryOnly": "true"}, "Invoices", id="invoices-summary"),
        pytest.param("Payments", {"page": 1, "pageSize": 1000}, "Payments", id="payments-paged"),
        pytest.param("Organisation", {}, "Organisations", id="organisation"),
    ],
)
def test_list_bodies_validate(client, headers, path, params, component):
    response = client.get(f"/api.xro/2.0/{path}", params=params, headers=headers())
    assert response.status_code == 200
    body = response.json()
    _accounting(body, component)
    assert body["Status"] == "OK" and body["DateTimeUTC"].startswith("/Date(")
    assert body[component]


@pytest.mark.parametrize("entity", ["accounts", "contacts", "invoices", "payments"])
def test_get_by_id_validates(sb, client, headers, entity):
    key = ENTITIES[entity].response_key
    record = next(iter(sb.records(sb.tenants[0].tenant_id, entity)))
    record_id = record[ENTITIES[entity].id_field]
    response = client.get(f"/api.xro/2.0/{ENTITIES[entity].path}/{record_id}", headers=headers())
    assert response.status_code == 200
    body = response.json()
    _accounting(body, key)
    assert body[key] == [record]


def test_identity_bodies_validate(sb, client):
    response = client.post(
        "/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": sb.issue_refresh_token()},
        auth=("sandbox-client", "sandbox-secret"),
    )
    _validate("xero-identity.yaml", {"$ref": "#/components/schemas/AccessToken"}, response.json())
    connections = client.get(
        "/connections", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    _validate(
        "xero-identity.yaml",
        {"type": "array", "items": {"$ref": "#/components/schemas/Connection"}},
        connections.json(),
    )
    assert {c["tenantId"] for c in connections.json()} == {t.tenant_id for t in sb.tenants}


def _has(record: dict[str, Any], dotted: str) -> bool:
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_every_registry_source_is_served(sb, entity):
    spec = ENTITIES[entity]
    records = list(sb.records(sb.tenants[0].tenant_id, entity))
    for column in spec.table.columns:
        if column.source in NOT_GENERATED:
            continue
        assert any(_has(r, column.source) for r in records), f"{entity}: {column.source} never served"
    for child in spec.children:
        rows = [row for r in records for row in r[child.source]]
        for column in child.columns:
            if (
                column.source in NOT_GENERATED
                or column.source.startswith("_")
                or column.name == child.parent_key
            ):
                continue
            assert any(column.source in row for row in rows), f"{child.name}: {column.source} never served"


def test_enums_match_registry(sb):
    tenant = sb.tenants[0].tenant_id
    for entity, spec in ENTITIES.items():
        for record in sb.records(tenant, entity):
            for column_name, allowed in spec.enums.items():
                source = spec.table.column(column_name).source
                if source in record:
                    assert record[source] in allowed, (entity, source, record[source])


def test_validator_rejects_a_wrong_body(client, headers):
    body = client.get("/api.xro/2.0/Invoices", params={"page": 1}, headers=headers()).json()
    body["Invoices"][0]["Status"] = "BOGUS"
    with pytest.raises(Exception, match="BOGUS"):
        _accounting(body, "Invoices")
