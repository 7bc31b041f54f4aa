"""Test doubles of the client tests: a fake paged Xero endpoint and a token provider stub."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from xero.entities import Entity

API = "https://api.xero.test"
IDENTITY = "https://identity.xero.test"
TOKEN_URL = f"{IDENTITY}/connect/token"
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "client-id-abc"
CLIENT_SECRET = "client-secret-SHOULD-NEVER-LEAK"
BASE_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def ms_date(ms: int) -> str:
    """Return Xero's JSON date for ``ms``."""
    return f"/Date({ms}+0000)/"


class StaticTokens:
    """A token provider handing out numbered access tokens; ``refresh`` moves to the next one."""

    def __init__(self) -> None:
        self.number = 1
        self.refreshes: list[str | None] = []

    def access_token(self) -> str:
        return f"access-{self.number}"

    def refresh(self, stale_access_token: str | None = None) -> str:
        self.refreshes.append(stale_access_token)
        self.number += 1
        return self.access_token()


class FakeXero:
    """A paged Xero endpoint over requests_mock, ordered by (UpdatedDateUTC, ID) like Xero.

    ``If-Modified-Since`` is inclusive at second precision. ``between`` hooks run before the n-th
    request is answered, to change data mid-paging.
    """

    def __init__(self, entity: Entity, count: int, *, pagination: bool = True) -> None:
        self.entity = entity
        self.pagination = pagination
        self.now_ms = BASE_MS
        self.records: dict[str, dict[str, Any]] = {}
        #: Values shown as UpdatedDateUTC instead of the real one (sorting still uses the real one).
        self.shown_updated: dict[str, str] = {}
        for _ in range(count):
            self.add()
        self.requests: list[dict[str, Any]] = []
        self.between: dict[int, Callable[[FakeXero], None]] = {}
        #: Request numbers whose page starts with the previous page's last record (an overlap).
        self.overlap: set[int] = set()
        self.limit_headers: dict[str, str] = {
            "X-MinLimit-Remaining": "59",
            "X-DayLimit-Remaining": "4999",
            "X-AppMinLimit-Remaining": "9999",
        }

    def tick(self) -> int:
        self.now_ms += 1500  # records land in distinct seconds, some sharing one
        return self.now_ms

    def add(self) -> str:
        record_id = f"{len(self.records):08d}-0000-0000-0000-000000000000"
        self.records[record_id] = {
            self.entity.id_field: record_id,
            "UpdatedDateUTC": ms_date(self.tick()),
            "Status": "AUTHORISED",
        }
        return record_id

    def update(self, record_id: str) -> None:
        record = dict(self.records.pop(record_id))
        record["UpdatedDateUTC"] = ms_date(self.tick())
        self.records[record_id] = record

    def remove(self, record_id: str) -> None:
        del self.records[record_id]

    def nth_id(self, position: int) -> str:
        return self.ordered()[position][self.entity.id_field]

    def ordered(self, since_s: int | None = None) -> list[dict[str, Any]]:
        def key(record: dict[str, Any]) -> tuple[int, str]:
            return (int(re.search(r"-?\d+", record["UpdatedDateUTC"]).group()), record[self.entity.id_field])

        rows = sorted(self.records.values(), key=key)
        if since_s is not None:
            rows = [r for r in rows if key(r)[0] // 1000 >= since_s]
        return rows

    def _shown(self, record: dict[str, Any]) -> dict[str, Any]:
        record_id = record[self.entity.id_field]
        if record_id in self.shown_updated:
            return {**record, "UpdatedDateUTC": self.shown_updated[record_id]}
        return record

    def __call__(self, request: Any, context: Any) -> str:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.requests.append({"query": query, "headers": dict(request.headers)})
        hook = self.between.get(len(self.requests))
        if hook is not None:
            hook(self)
        since = request.headers.get("If-Modified-Since")
        since_s = (
            int(datetime.strptime(since, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
            if since
            else None
        )
        rows = self.ordered(since_s)
        context.headers.update(self.limit_headers)
        context.headers["Content-Type"] = "application/json; charset=utf-8"
        body: dict[str, Any] = {"Id": "x", "Status": "OK", "ProviderName": "test"}
        if "page" in query:
            page = int(query["page"])
            size = min(int(query.get("pageSize", 100)), 1000)
            chunk = rows[(page - 1) * size : page * size]
            if len(self.requests) in self.overlap and page > 1:
                chunk = [rows[(page - 1) * size - 1], *chunk]
            if self.pagination:
                body["pagination"] = {
                    "page": page,
                    "pageSize": size,
                    "pageCount": -(-len(rows) // size),
                    "itemCount": len(rows),
                }
        else:
            chunk = rows
        body[self.entity.response_key] = [self._shown(record) for record in chunk]
        return json.dumps(body)
