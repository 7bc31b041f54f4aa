"""Command line of the Xero integration: ``python -m xero auth|quarantine|dictionary …``.

``dictionary`` prints the warehouse's data dictionary (Markdown) from the entity registry and the SQL
models' headers, or with ``--update sql/README.md`` rewrites the generated section of that file.

``auth`` runs the consent step for one ``xero`` connection (see :mod:`xero.consent`): it reads the
connection (client id and secret, scopes, identity and authorize URLs, token store), prints and opens
the consent URL, receives the code on ``http://localhost:<port>/callback``, stores the token in the
connection's token store and lists the organisations granted. Tokens are never printed.

``quarantine list`` shows what the warehouse holds in ``_quarantine`` (counts per tenant × entity ×
reason, then the newest rows); ``quarantine replay`` re-validates those rows with the current rules and
loads the records that pass (see :mod:`xero.replay`). Both take ``--tenant``, ``--entity``, ``--reason``
(a substring), ``--run-id``, ``--conn-id`` (the warehouse connection) and ``--schema``.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xero.consent import run_consent
from xero.exceptions import XeroError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xero", description="Xero integration for Airflow")
    commands = parser.add_subparsers(dest="command", required=True)
    auth = commands.add_parser(
        "auth", help="connect the app to Xero (consent) and store the first token in the token store"
    )
    auth.add_argument("--conn-id", default="xero_default", help="the xero connection (default xero_default)")
    auth.add_argument(
        "--port", type=int, default=8765, help="port of the local redirect server (default 8765)"
    )
    auth.add_argument("--no-browser", action="store_true", help="only print the consent URL")
    auth.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the consent (default 300)"
    )
    quarantine = commands.add_parser(
        "quarantine", help="list quarantined rows, or replay them through the current validation rules"
    )
    actions = quarantine.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "counts per tenant × entity × reason, then the newest rows"),
        ("replay", "re-validate with the current rules; load what passes, keep the rest with its new reason"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--tenant", help="only this tenant id")
        action.add_argument("--entity", help="only this entity (accounts, contacts, invoices, payments)")
        action.add_argument("--reason", help="only reasons containing this text (case-insensitive)")
        action.add_argument("--run-id", help="only rows quarantined by this run")
        action.add_argument(
            "--conn-id",
            default=os.environ.get("XERO_WAREHOUSE_CONN_ID", "xero_warehouse"),
            help="the warehouse connection (default xero_warehouse)",
        )
        action.add_argument(
            "--schema",
            default=os.environ.get("XERO_SCHEMA", "xero"),
            help="the warehouse schema (default xero)",
        )
        if name == "list":
            action.add_argument("--limit", type=int, default=50, help="rows to show (default 50)")
    dictionary = commands.add_parser(
        "dictionary", help="print the data dictionary of the warehouse tables and SQL models (Markdown)"
    )
    dictionary.add_argument(
        "--sql-dir", type=Path, default=Path("sql"), help="directory of the SQL models (default sql)"
    )
    dictionary.add_argument(
        "--update",
        type=Path,
        metavar="FILE",
        help="rewrite the generated section of FILE (e.g. sql/README.md) instead of printing",
    )
    return parser


def quarantine_command(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    """Run ``quarantine list`` or ``quarantine replay``; return the exit status."""
    from tabulate import tabulate

    from xero.replay import QuarantineFilter, list_quarantine, replay
    from xero.warehouse import Warehouse

    where = QuarantineFilter(
        tenant_id=args.tenant, entity=args.entity, reason=args.reason, run_id=args.run_id
    )
    warehouse = Warehouse.from_conn_id(args.conn_id, schema=args.schema)
    if args.action == "list":
        listing = list_quarantine(warehouse, where, limit=args.limit)
        if not listing.total:
            echo("No quarantined rows match.")
            return 0
        echo(f"{listing.total} quarantined rows:")
        echo(tabulate(listing.counts, headers=["tenant", "entity", "reason", "rows"], disable_numparse=True))
        echo(f"\nNewest {len(listing.rows)}:")
        echo(
            tabulate(
                [(*row[:4], f"{row[4]:%Y-%m-%d %H:%M:%S}", row[5]) for row in listing.rows],
                headers=["tenant", "entity", "record", "run", "quarantined at (UTC)", "reason"],
                disable_numparse=True,
            )
        )
        return 0
    outcomes = replay(warehouse, where)
    if not outcomes:
        echo("No quarantined rows match: nothing to replay.")
        return 0
    table = []
    for outcome in outcomes:
        loaded = outcome.loaded
        table.append(
            (
                outcome.tenant_id,
                outcome.entity,
                outcome.candidates,
                0 if loaded is None else loaded.inserted + loaded.updated + loaded.unchanged,
                0 if loaded is None else loaded.kept_newer,
                len(outcome.still_failing),
                outcome.unreadable,
            )
        )
    echo(
        tabulate(
            table,
            headers=["tenant", "entity", "replayed", "loaded", "newer kept", "still failing", "unreadable"],
        )
    )
    for outcome in outcomes:
        for record, reason in outcome.still_failing.items():
            echo(f"still failing: {outcome.tenant_id} {outcome.entity} {record}: {reason}")
    return 0


def data_dictionary(sql_dir: Path) -> str:
    """Return the data dictionary (Markdown) of the registry tables and the models of ``sql_dir``."""
    from xero.entities import ENTITIES
    from xero.warehouse.ddl import build_metadata
    from xero.warehouse.dictionary import render_markdown
    from xero.warehouse.models import load_models

    return render_markdown(build_metadata(ENTITIES.values(), "postgres"), load_models(sql_dir))


def dictionary_command(sql_dir: Path, update: Path | None, echo: Callable[[str], None] = print) -> int:
    """Print the data dictionary, or rewrite the generated section of ``update``; return the exit status."""
    from xero.warehouse.dictionary import replace_section

    text = data_dictionary(sql_dir)
    if update is None:
        echo(text.rstrip("\n"))
        return 0
    current = update.read_text(encoding="utf-8")
    new = replace_section(current, text)
    if new != current:
        update.write_text(new, encoding="utf-8")
        echo(f"{update}: data dictionary updated")
    else:
        echo(f"{update}: data dictionary already up to date")
    return 0


def auth_command(
    conn_id: str,
    *,
    port: int,
    open_url: Callable[[str], Any] | None,
    timeout: float,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the consent step for connection ``conn_id``; return the exit status."""
    from xero.hooks import XeroHook

    hook = XeroHook(conn_id)
    config = hook.config
    if config.grant_type != "authorization_code":
        echo(f"Connection {conn_id!r} uses {config.grant_type}: a Custom Connection needs no consent step.")
        return 2
    store = hook.token_manager.store
    result = run_consent(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scopes=config.requested_scopes(),
        authorize_url=config.authorize_url,
        token_url=config.token_url,
        connections_url=f"{config.api_url}/connections",
        store=store,
        port=port,
        open_url=open_url,
        echo=echo,
        timeout=timeout,
    )
    echo(f"Token stored in {store!r}. Scopes granted: {result.scope}")
    echo(f"Organisations connected ({len(result.tenants)}):")
    for tenant in result.tenants:
        echo(f"  {tenant.get('tenantId')}  {tenant.get('tenantName')}  ({tenant.get('tenantType')})")
    if config.refresh_token:
        echo(
            "Note: the connection extra 'refresh_token' is no longer needed; the token store now holds the grant."
        )
    return 0


def main(argv: Sequence[str] | None = None, *, open_url: Callable[[str], Any] | None = None) -> int:
    """Run the command line; return the exit status.

    :param argv: arguments (``sys.argv[1:]`` by default).
    :param open_url: opens the consent URL (the web browser by default, none with ``--no-browser``).
    """
    args = _parser().parse_args(argv)
    if args.command == "dictionary":
        try:
            return dictionary_command(args.sql_dir, args.update)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    try:
        if args.command == "quarantine":
            return quarantine_command(args)
        opener = None if args.no_browser else (open_url or webbrowser.open)
        return auth_command(args.conn_id, port=args.port, open_url=opener, timeout=args.timeout)
    except (XeroError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
