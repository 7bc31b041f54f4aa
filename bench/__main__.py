"""Entry point of ``make bench`` (``python -m bench``): run every benchmark and write ``bench/results.json``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # keep the table readable

from bench.sync_bench import main

if __name__ == "__main__":
    sys.exit(main())
