"""The HTTP face of the sandbox: Xero's identity and accounting endpoints plus ``/_sandbox`` admin.

Routes mirror Xero's URL layout (``/connect/authorize``, ``/connect/token``, ``/connections``,
``/api.xro/2.0/<Endpoint>``) so a client only changes base URLs. An outer ASGI wrapper records every
call in :attr:`Sandbox.requests` (never the Authorization header) and can drop a connection without
a response.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import struct
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from xero_sandbox.auth import OAuthError
from xero_sandbox.config import RequestRecord
from xero_sandbox.data import NotFound, encode_json
from xero_sandbox.faults import Fault
from xero_sandbox.query import QueryError, list_records, parse_if_modified_since

if TYPE_CHECKING:
    from xero_sandbox.index import Selection
    from xero_sandbox.sandbox import Sandbox

ENDPOINTS = {
    "accounts": "Accounts",
    "contacts": "Contacts",
    "invoices": "Invoices",
    "payments": "Payments",
    "organisation": "Organisation",
}
#: Scopes that allow reading each endpoint: granular, broad and their write variants.
READ_SCOPES = {
    "Accounts": {"accounting.settings.read", "accounting.settings"},
    "Organisation": {"accounting.settings.read", "accounting.settings"},
    "Contacts": {"accounting.contacts.read", "accounting.contacts"},
    "Invoices": {
        "accounting.invoices.read",
        "accounting.invoices",
        "accounting.transactions.read",
        "accounting.transactions",
    },
    "Payments": {
        "accounting.payments.read",
        "accounting.payments",
        "accounting.transactions.read",
        "accounting.transactions",
    },
}
_DROP_KEY = "xero_sandbox.drop"
_FAULT_KEY = "xero_sandbox.fault"
_RAW_SEND = "xero_sandbox.raw_send"


_ENCODE = encode_json  # compact JSON like json.dumps(separators=(",", ":")), ~2x faster


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_ENCODE(body), status, headers, media_type="application/json")


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return _json(body, status, headers)


def _validation(message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": message}]}],
    }
    return _json(body, 400, headers)


class DropConnection(Response):
    """A response that closes the socket without sending anything (a connection reset)."""

    def __init__(self) -> None:
        super().__init__(b"", 200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope[_DROP_KEY] = True
        raw_send = scope.get(_RAW_SEND)
        cycle: Any = getattr(raw_send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if cycle is None or transport is None:
            raise ConnectionResetError("xero_sandbox fault: connection reset")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        cycle.disconnected = True


class _Recorder:
    """Outer ASGI wrapper: records each non-admin call and keeps uvicorn's send for connection drops."""

    def __init__(self, app: FastAPI, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        record = RequestRecord(
            tenant_id=headers.get("xero-tenant-id"),
            method=scope["method"],
            path=scope["path"],
            params=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)),
            if_modified_since=headers.get("if-modified-since"),
            at=self.sandbox.clock.now(),
        )
        scope[_RAW_SEND] = send

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            record.fault = scope.get(_FAULT_KEY)
            if scope.get(_DROP_KEY):
                record.status = 0
            self.sandbox.record_request(record)


def build_app(sb: Sandbox) -> Any:
    """Build the sandbox's ASGI app for ``sb``."""
    app = FastAPI(
        title="Xero sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json", redoc_url=None
    )

    # ------------------------------------------------------------------ identity
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        redirect = params.get("redirect_uri", "")
        try:
            code = sb.auth.authorize(params)
        except OAuthError as exc:
            if not redirect or exc.error == "unauthorized_client":
                return _json(exc.body(), 400)
            query = {"error": exc.error, **({"state": params["state"]} if "state" in params else {})}
            return RedirectResponse(_with_query(redirect, query), 302)
        query = {"code": code, "scope": params.get("scope", "")}
        if "state" in params:
            query["state"] = params["state"]
        return RedirectResponse(_with_query(redirect, query), 302)

    app.add_api_route("/connect/authorize", authorize, methods=["GET"], include_in_schema=False)
    app.add_api_route("/identity/connect/authorize", authorize, methods=["GET"], include_in_schema=False)

    @app.post("/connect/token", include_in_schema=False)
    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        fault = sb.faults.take("token")
        if fault is not None:
            request.scope[_FAULT_KEY] = fault.kind
            early = await _apply_transport_fault(fault)
            if early is not None:
                return early
            if fault.kind == "refresh_invalid_grant" and form.get("grant_type") == "refresh_token":
                return _json({"error": "invalid_grant"}, 400)
        client_id, client_secret = _basic_auth(request.headers.get("authorization"))
        try:
            body = sb.auth.token(form, client_id, client_secret)
        except OAuthError as exc:
            return _json(exc.body(), exc.status)
        response = _json(body)
        if fault is not None and fault.kind in ("malformed_json", "truncated_json"):
            return _corrupt(response, fault.kind)
        return response

    @app.get("/connections", include_in_schema=False)
    async def connections(request: Request) -> Response:
        fault = sb.faults.take("connections")
        if fault is not None:
            request.scope[_FAULT_KEY] = fault.kind
            if fault.kind == "token_expired":
                sb.auth.expire(_bearer(request))
            early = await _apply_transport_fault(fault)
            if early is not None:
                return early
        check = sb.auth.check_access(_bearer(request))
        if check.grant is None:
            return _problem(401, "Unauthorized", check.detail)
        wanted = request.query_params.get("authEventId")
        rows = [
            c.as_json()
            for c in check.grant.connections
            if not c.deleted and (wanted is None or c.auth_event_id == wanted)
        ]
        return _json(rows)

    @app.delete("/connections/{connection_id}", include_in_schema=False)
    async def delete_connection(connection_id: str, request: Request) -> Response:
        check = sb.auth.check_access(_bearer(request))
        if check.grant is None:
            return _problem(401, "Unauthorized", check.detail)
        if not sb.auth.delete_connection(check.grant, connection_id):
            return _problem(404, "Not Found", "connection not found")
        return Response(status_code=204)

    # ------------------------------------------------------------------ accounting
    async def accounting(request: Request, endpoint: str, record_id: str | None = None) -> Response:
        name = ENDPOINTS.get(endpoint.lower())
        if name is None:
            return _problem(404, "Not Found", f"the sandbox does not serve {endpoint}")
        tenant_id = request.headers.get("xero-tenant-id")
        fault = sb.faults.take(name, tenant_id)
        if fault is not None:
            request.scope[_FAULT_KEY] = fault.kind
        token_value = _bearer(request)
        if fault is not None and fault.kind == "token_expired":
            sb.auth.expire(token_value)
        check = sb.auth.check_access(token_value)
        if check.grant is None:
            return _problem(401, "Unauthorized", check.detail)
        if not tenant_id:
            return _validation("The xero-tenant-id header is required")
        if tenant_id not in check.grant.tenant_ids():
            return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
        if not READ_SCOPES[name] & set(check.grant.scopes):
            return _problem(401, "Unauthorized", "AuthorizationUnsuccessful")
        if fault is not None and fault.kind in ("429_minute", "429_day"):
            problem = fault.kind.split("_")[1]
            headers = sb.limits.headers(tenant_id)
            headers.update(
                {
                    "Retry-After": str(sb.limits.retry_after(tenant_id, problem)),
                    "X-Rate-Limit-Problem": problem,
                }
            )
            return PlainTextResponse("", 429, headers)
        decision = sb.limits.acquire(tenant_id)
        if not decision.allowed:
            headers = dict(decision.headers)
            headers["X-Rate-Limit-Problem"] = decision.problem or "minute"
            if decision.retry_after is not None:
                headers["Retry-After"] = str(decision.retry_after)
            return PlainTextResponse("", 429, headers)
        try:
            if fault is not None:
                early = await _apply_transport_fault(fault)
                if early is not None:
                    return early
            try:
                body = _serve(sb, name, tenant_id, record_id, request, fault)
            except QueryError as exc:
                return _validation(str(exc), decision.headers)
            except NotFound as exc:
                return _problem(404, "Not Found", str(exc), decision.headers)
            response = _json(body, 200, decision.headers)
            if fault is not None and fault.kind in ("malformed_json", "truncated_json"):
                return _corrupt(response, fault.kind)
            return response
        finally:
            sb.limits.release(tenant_id)

    app.add_api_route("/api.xro/2.0/{endpoint}", accounting, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/api.xro/2.0/{endpoint}/{record_id}", accounting, methods=["GET"], include_in_schema=False
    )

    from xero_sandbox.admin import admin_router

    app.include_router(admin_router(sb), prefix="/_sandbox")
    return _Recorder(app, sb)


def _serve(
    sb: Sandbox, name: str, tenant_id: str, record_id: str | None, request: Request, fault: Fault | None
) -> dict[str, Any]:
    org = sb.org(tenant_id)
    body: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "Xero Sandbox",
        "DateTimeUTC": f"/Date({sb.clock.now_ms()})/",
    }
    if name == "Organisation":
        body["Organisations"] = [org.organisation_record()]
        return body
    entity = name.lower()
    with sb.lock:
        if record_id is not None:
            pos = org.find(entity, record_id)
            body[name] = [org.render(entity, pos, True)]
            return body
        params = dict(request.query_params)
        since = parse_if_modified_since(request.headers.get("if-modified-since"))
        hook = None
        if fault is not None and fault.kind == "update_between_pages":
            hook = _update_between_pages(sb, org, entity)
        churn = sb.faults.churn_of(entity, tenant_id) if params.get("page") else None
        if churn is not None:
            churn.before_page(org, sb.clock)
        result = list_records(
            org, entity, params, since, threshold=sb.config.high_volume_threshold, before_page=hook
        )
        if churn is not None:
            churn.after_page(result.selection.slice(result.offset, result.page_size))
        records = result.records
        if fault is not None and fault.kind == "duplicate_record" and result.pagination and result.offset > 0:
            previous = result.selection.slice(result.offset - 1, 1)
            if len(previous):
                records = [org.render(entity, int(previous[0]), True), *records]
    if result.pagination is not None:
        body["pagination"] = result.pagination
    body[name] = records
    return body


def _update_between_pages(sb: Sandbox, org: Any, entity: str) -> Any:
    """Return a hook that updates the first record already served, so everything after it shifts back."""

    def hook(selection: Selection, offset: int, size: int) -> None:
        if offset <= 0:
            return
        served = selection.slice(0, 1)
        if len(served):
            org.touch(entity, int(served[0]), sb.clock.now_ms())

    return hook


async def _apply_transport_fault(fault: Fault) -> Response | None:
    kind = fault.kind
    if kind == "500":
        return _problem(
            500,
            "An error occurred",
            "An error occurred in Xero. Check the API Status page http://status.developer.xero.com "
            "for current service status.",
        )
    if kind == "503_org_offline":
        return PlainTextResponse("The Organisation is offline", 503)
    if kind == "reset":
        return DropConnection()
    if kind == "delay":
        await asyncio.sleep(float(fault.params.get("seconds", 5.0)))
    return None


def _corrupt(response: Response, kind: str) -> Response:
    body = bytes(response.body)
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")
    }
    if kind == "truncated_json":
        broken = body[: max(len(body) // 2, 1)]
    else:
        broken = b'{"Id": "' + body[:40].replace(b'"', b"'") + b" <html>Service error</html>"
    return Response(broken, response.status_code, headers, media_type="application/json")


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _basic_auth(value: str | None) -> tuple[str | None, str | None]:
    if not value or value[:6].lower() != "basic ":
        return None, None
    try:
        decoded = base64.b64decode(value[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _with_query(url: str, query: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(query)
