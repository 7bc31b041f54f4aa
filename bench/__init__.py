"""Benchmarks of the Xero sync against the local sandbox (``python -m bench``); see ``bench/README.md``."""
