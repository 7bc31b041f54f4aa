"""Keeps the provider's secrets out of Airflow's DEBUG logs of the task supervisor's requests.

Upstream cause: at DEBUG, Airflow's task SDK logs the requests a task sends its supervisor as objects
(``InProcessSupervisorComms.send`` in ``airflow.sdk.execution_time.supervisor`` logs
``"Sending request", msg=<request>``; it is the path of ``airflow dags test`` and of in-process task runs).
Two of those requests carry this provider's secrets in their body:

* ``MaskSecret(value=...)``, sent by every ``mask_secret`` call: the line is written *before* the
  supervisor registers the value with the secrets masker, so the secret itself is printed;
* ``PutVariable(value=...)``, the token store's write of a rotated token, also logged by the supervisor as
  ``"Received message from task runner"``: Airflow's masker redacts strings, dicts and lists in a log event
  but not the fields of an object, so the tokens inside it are printed although they are registered.

Airflow sends ``MaskSecret`` requests of its own for a connection's password and extras as soon as a task
reads the connection, so the processor must be in place before the hook reads it: importing
:mod:`xero.auth` installs it, and :func:`xero.auth.mask_secret` installs it again should Airflow have
configured logging anew since. :func:`install` adds, once per structlog configuration, a processor ahead
of Airflow's own that replaces a ``MaskSecret`` in a log event by ``MaskSecret(<omitted>)`` and any other
supervisor request by its text with every registered secret redacted.

Not covered, upstream: a supervisor in a separate process (Celery and local executors) writes its own
``"Received message from task runner"`` lines, where this provider's code never runs. It omits the body of
``MaskSecret`` itself; a ``PutVariable`` there still shows the token store's value at DEBUG, so keep
production workers at INFO or use a ``file:`` token store.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any

_COMMS_MODULE = "airflow.sdk.execution_time.comms"
_lock = threading.Lock()


def _redact(text: str) -> str:
    """Return ``text`` with every secret registered with Airflow's masker replaced by ``***``."""
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover - the task SDK comes with Airflow 3
        return text
    return str(redact(text))


def redact_supervisor_requests(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Structlog processor: hide the body of ``MaskSecret``; other supervisor requests become redacted text."""
    for key, value in event_dict.items():
        if type(value).__module__ != _COMMS_MODULE:
            continue
        if type(value).__name__ == "MaskSecret":
            event_dict[key] = "MaskSecret(<omitted>)"
        else:
            event_dict[key] = _redact(repr(value))
    return event_dict


def install() -> bool:
    """Put :func:`redact_supervisor_requests` first in structlog's processors, unless it is there already.

    The processor list is changed in place, so loggers already in use (structlog keeps a reference to
    it) get it too. Return whether it was added now.
    """
    try:
        import structlog
    except ImportError:  # pragma: no cover - structlog comes with Airflow
        return False
    with _lock:
        processors = structlog.get_config()["processors"]
        if redact_supervisor_requests in processors or not isinstance(processors, list):
            return False
        processors.insert(0, redact_supervisor_requests)
        return True
