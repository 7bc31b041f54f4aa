"""Admin endpoints under ``/_sandbox``: the HTTP twin of the Python change, clock and fault API.

Not part of Xero. Unauthenticated on purpose (the sandbox binds to 127.0.0.1); nothing here is
recorded in :attr:`Sandbox.requests`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from xero_sandbox.data import NotFound
from xero_sandbox.faults import KINDS

if TYPE_CHECKING:
    from xero_sandbox.sandbox import Sandbox

_Payload = Annotated[dict[str, Any] | None, Body()]


def admin_router(sb: Sandbox) -> APIRouter:
    """Return the ``/_sandbox`` routes bound to ``sb``."""
    router = APIRouter()

    def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (KeyError, NotFound) as exc:
            raise HTTPException(404, str(exc).strip("'\"")) from None
        except (ValueError, LookupError) as exc:
            raise HTTPException(400, str(exc)) from None

    @router.get("/tenants")
    def tenants() -> list[dict[str, Any]]:
        """List the tenants with their record counts."""
        return [
            {
                "tenant_id": t.tenant_id,
                "name": t.name,
                "counts": {
                    e: sb.count(t.tenant_id, e) for e in ("accounts", "contacts", "invoices", "payments")
                },
            }
            for t in sb.tenants
        ]

    @router.post("/grant")
    def grant(payload: _Payload = None) -> dict[str, Any]:
        """Consent without a browser: return a refresh token (body: ``scopes``, ``tenant_ids``)."""
        payload = payload or {}
        token = guarded(sb.issue_refresh_token, payload.get("scopes"), payload.get("tenant_ids"))
        return {"refresh_token": token, "client_id": sb.config.client_id}

    @router.get("/clock")
    def clock() -> dict[str, Any]:
        """Return the sandbox clock."""
        return {"now": sb.clock.now().isoformat()}

    @router.post("/clock/advance")
    def advance(payload: _Payload = None) -> dict[str, Any]:
        """Move the clock forward by ``seconds``."""
        payload = payload or {}
        return {"now": sb.clock.advance(float(payload.get("seconds", 0))).isoformat()}

    @router.post("/tenants/{tenant_id}/invoices/update")
    def update_invoice(tenant_id: str, payload: _Payload = None) -> dict[str, str]:
        """Change an invoice: body ``{"invoice_id": optional, "fields": {...}}``."""
        payload = payload or {}
        record_id = guarded(
            sb.update_invoice, tenant_id, payload.get("invoice_id"), **payload.get("fields", {})
        )
        return {"id": record_id}

    @router.post("/tenants/{tenant_id}/invoices/void")
    def void_invoice(tenant_id: str, payload: _Payload = None) -> dict[str, str]:
        """Void an invoice (body ``{"invoice_id": optional}``)."""
        payload = payload or {}
        return {"id": guarded(sb.void_invoice, tenant_id, payload.get("invoice_id"))}

    @router.post("/tenants/{tenant_id}/payments/delete")
    def delete_payment(tenant_id: str, payload: _Payload = None) -> dict[str, str]:
        """Delete a payment (body ``{"payment_id": optional}``)."""
        payload = payload or {}
        return {"id": guarded(sb.delete_payment, tenant_id, payload.get("payment_id"))}

    @router.post("/tenants/{tenant_id}/contacts/archive")
    def archive_contact(tenant_id: str, payload: _Payload = None) -> dict[str, str]:
        """Archive a contact (body ``{"contact_id": optional}``)."""
        payload = payload or {}
        return {"id": guarded(sb.archive_contact, tenant_id, payload.get("contact_id"))}

    @router.post("/tenants/{tenant_id}/{entity}/touch")
    def touch(tenant_id: str, entity: str, payload: _Payload = None) -> dict[str, str]:
        """Bump a record's UpdatedDateUTC (body ``{"id": optional}``)."""
        payload = payload or {}
        return {"id": guarded(sb.touch, tenant_id, entity, payload.get("id"))}

    @router.get("/faults")
    def faults() -> dict[str, Any]:
        """List the fault kinds, the pending scripted rules and the faults fired so far."""
        return {
            "kinds": KINDS,
            "pending": [asdict(r) for r in sb.faults.pending()],
            "fired": [{"endpoint": e, "kind": k} for e, k in sb.faults.fired],
        }

    @router.post("/faults")
    def script_fault(payload: _Payload = None) -> dict[str, Any]:
        """Script a fault: ``{"endpoint", "nth", "kind", "times", "tenant_id", "params"}``."""
        payload = payload or {}
        rule = guarded(
            sb.faults.script,
            payload.get("endpoint", "*"),
            int(payload.get("nth", 1)),
            payload.get("kind", "500"),
            times=int(payload.get("times", 1)),
            tenant_id=payload.get("tenant_id"),
            **payload.get("params", {}),
        )
        return asdict(rule)

    @router.post("/faults/random")
    def random_faults(payload: _Payload = None) -> dict[str, str]:
        """Start seeded random faults: ``{"seed", "rate", "kinds", "endpoints", "params"}``."""
        payload = payload or {}
        guarded(
            sb.faults.random,
            int(payload.get("seed", 0)),
            float(payload.get("rate", 0.2)),
            payload.get("kinds"),
            payload.get("endpoints"),
            **payload.get("params", {}),
        )
        return {"status": "ok"}

    @router.delete("/faults")
    def clear_faults() -> dict[str, str]:
        """Remove every scripted and random fault."""
        sb.faults.clear()
        return {"status": "ok"}

    @router.get("/requests")
    def requests() -> list[dict[str, Any]]:
        """Return the recorded API calls."""
        with sb.lock:
            rows = [asdict(r) for r in sb.requests]
        for row in rows:
            row["at"] = row["at"].isoformat() if row["at"] else None
        return rows

    @router.delete("/requests")
    def reset_requests() -> dict[str, str]:
        """Forget the recorded API calls."""
        sb.reset_requests()
        return {"status": "ok"}

    @router.post("/limits/reset")
    def reset_limits() -> dict[str, str]:
        """Forget every rate-limit count."""
        sb.limits.reset()
        return {"status": "ok"}

    return router
