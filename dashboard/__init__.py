"""A local web dashboard over the marts of the configured warehouse (Streamlit).

Modules: :mod:`dashboard.source` finds and opens the warehouse read-only, :mod:`dashboard.queries` holds
the named SQL behind every figure, :mod:`dashboard.views` renders the pages and :mod:`dashboard.app` is the
Streamlit entry point (``python -m dashboard`` starts it).
"""
