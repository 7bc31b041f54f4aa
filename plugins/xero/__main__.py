"""Command line of the Xero integration: ``python -m xero auth --conn-id xero_default``.

``dictionary`` prints the warehouse's data dictionary (Markdown) from the entity registry and the SQL
models' headers, or with ``--update sql/README.md`` rewrites the generated section of that file.

``auth`` runs the consent step for one ``xero`` connection (see :mod:`xero.consent`): it reads the
connection (client id and secret, scopes, identity and authorize URLs, token store), prints and opens
the consent URL, receives the code on ``http://localhost:<port>/callback``, stores the token in the
connection's token store and lists the organisations granted. Tokens are never printed.
"""

from __future__ import annotations

import argparse
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
    opener = None if args.no_browser else (open_url or webbrowser.open)
    try:
        return auth_command(args.conn_id, port=args.port, open_url=opener, timeout=args.timeout)
    except XeroError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
