"""Start the dashboard: ``python -m dashboard [--port 8501] [--address 127.0.0.1]``.

Runs ``streamlit run dashboard/app.py`` in this process, locally (no usage statistics sent, no file
watcher, no error details in the browser: failures are explained on the page and logged here).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

APP = Path(__file__).resolve().with_name("app.py")


def streamlit_args(port: int, address: str) -> list[str]:
    """Return the ``streamlit run`` command line of the dashboard."""
    return [
        "streamlit",
        "run",
        str(APP),
        f"--server.port={port}",
        f"--server.address={address}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--client.showErrorDetails=none",
        "--client.toolbarMode=viewer",
        "--theme.base=light",
    ]


def main(argv: list[str] | None = None) -> int:
    """Parse the options and serve the dashboard until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m dashboard", description="Serve the Xero dashboard locally."
    )
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    options = parser.parse_args(argv)
    from streamlit.web import cli

    sys.argv = streamlit_args(options.port, options.address)
    print(f"Dashboard: http://{options.address}:{options.port}  (Ctrl-C stops it)", flush=True)
    return int(cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
