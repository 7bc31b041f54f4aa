"""The processor that keeps secrets out of the task supervisor's DEBUG request log (see xero.log_redaction)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from airflow.sdk.execution_time.comms import MaskSecret, PutVariable

from xero import log_redaction
from xero.auth import mask_secret

SECRET = "client-Secret-for-the-log-test-0123"


@pytest.fixture
def captured() -> Iterator[list[str]]:
    """Configure structlog like Airflow (a processor chain ending in a renderer) and capture rendered lines."""
    import airflow.sdk.log  # noqa: F401 - Airflow configures structlog when this is first imported

    lines: list[str] = []
    saved = structlog.get_config()

    def capture(logger, method_name, event_dict):
        lines.append(structlog.dev.ConsoleRenderer(colors=False)(logger, method_name, event_dict))
        raise structlog.DropEvent

    structlog.configure(
        processors=[structlog.processors.add_log_level, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=True,
    )
    try:
        yield lines
    finally:
        structlog.configure(**saved)


def test_a_mask_request_logged_at_debug_does_not_print_the_secret(captured: list[str]) -> None:
    log = structlog.get_logger()
    log.debug("Sending request", msg=MaskSecret(value="warm-up-value"))  # bound before the install
    mask_secret(SECRET)  # installs the processor, then registers the secret
    log.debug("Sending request", msg=MaskSecret(value=SECRET, name=None))
    assert SECRET not in captured[-1] and "MaskSecret(<omitted>)" in captured[-1]
    assert "warm-up-value" in captured[0], "the processor must only act once installed"


def test_other_requests_become_text_the_masker_can_redact(captured: list[str]) -> None:
    log_redaction.install()
    event = log_redaction.redact_supervisor_requests(
        None,
        "debug",
        {"event": "Sending request", "msg": PutVariable(key="k", value='{"a": 1}', description=None), "n": 3},
    )
    assert event["msg"] == repr(PutVariable(key="k", value='{"a": 1}', description=None)) and event["n"] == 3


def test_install_is_idempotent(captured: list[str]) -> None:
    assert log_redaction.install() is True
    assert log_redaction.install() is False
    mask_secret(SECRET)
    processors = structlog.get_config()["processors"]
    assert processors.count(log_redaction.redact_supervisor_requests) == 1
    assert processors[0] is log_redaction.redact_supervisor_requests
