"""Command line: ``python -m xero_sandbox --port 8765`` serves a seeded sandbox until interrupted."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields

from xero_sandbox.config import SandboxConfig
from xero_sandbox.sandbox import Sandbox

_INT_OPTIONS = (
    "seed",
    "tenants",
    "accounts",
    "contacts",
    "invoices",
    "max_line_items",
    "history_days",
    "minute_limit",
    "day_limit",
    "concurrent_limit",
    "app_minute_limit",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (defaults are :class:`SandboxConfig`'s)."""
    defaults = {f.name: f.default for f in fields(SandboxConfig)}
    parser = argparse.ArgumentParser(
        prog="python -m xero_sandbox", description="Serve a local, seeded Xero API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to bind (default 8765; 0 picks a free one)"
    )
    for name in _INT_OPTIONS:
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=defaults[name], help=f"default {defaults[name]}"
        )
    parser.add_argument("--payments-ratio", type=float, default=defaults["payments_ratio"])
    parser.add_argument("--client-id", default=defaults["client_id"])
    parser.add_argument("--client-secret", default=defaults["client_secret"])
    parser.add_argument("--no-limits", action="store_true", help="disable every rate limit")
    parser.add_argument(
        "--print-refresh-token",
        action="store_true",
        help="print a JSON line with a refresh token for all tenants (a grant without a browser)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build the sandbox from ``argv``, serve it and print its URL."""
    args = build_parser().parse_args(argv)
    values = {name: getattr(args, name) for name in _INT_OPTIONS}
    cfg = SandboxConfig(
        **values,
        payments_ratio=args.payments_ratio,
        client_id=args.client_id,
        client_secret=args.client_secret,
    )
    if args.no_limits:
        cfg = cfg.without_limits()
    sandbox = Sandbox(cfg)
    with sandbox.serve(args.host, args.port) as url:
        print(url, flush=True)
        if args.print_refresh_token:
            grant = {
                "url": url,
                "client_id": cfg.client_id,
                "refresh_token": sandbox.issue_refresh_token(),
                "tenants": [t.tenant_id for t in sandbox.tenants],
            }
            print(json.dumps(grant), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
