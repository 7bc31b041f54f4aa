"""Readiness waits tolerate a slow or absent server until their deadline, then name what did not come up."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from scripts import demo
from scripts.readiness import ServiceNotReady, wait_until_up

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class StartingServer:
    """A TCP server that accepts every connection; the first ``silent`` get no answer (a read timeout for the
    client), the next ``unavailable`` get a 503, the rest a 200."""

    def __init__(self, silent: int, unavailable: int = 0) -> None:
        self.silent = silent
        self.unavailable = unavailable
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/health"

    def _serve(self) -> None:
        self._sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            if self.accepted <= self.silent:
                self._held.append(conn)  # read nothing, answer nothing: the client's read times out
                continue
            conn.recv(65536)
            conn.sendall(UNAVAILABLE if self.accepted <= self.silent + self.unavailable else OK)
            conn.close()

    @contextmanager
    def running(self) -> Iterator[StartingServer]:
        thread = threading.Thread(target=self._serve, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=5)
            for conn in self._held:
                conn.close()
            self._sock.close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/health"


def test_waits_through_read_timeouts_and_503_until_the_server_answers() -> None:
    with StartingServer(silent=2, unavailable=1).running() as server:
        response = wait_until_up(
            server.url, what="the test server", timeout=60, interval=0, probe_timeout=0.2
        )
    assert response.status_code == 200
    assert response.text == "ok"
    assert server.accepted == 4  # two read timeouts and one 503 were waited through


def test_a_server_that_never_comes_up_is_named_with_its_url_and_last_error() -> None:
    url = _closed_port_url()
    with pytest.raises(ServiceNotReady) as caught:
        wait_until_up(url, what="the Xero sandbox", timeout=0.5, interval=0.05)
    message = str(caught.value)
    assert message.startswith(f"the Xero sandbox did not come up at {url} within ")
    assert "(limit 0.5 s); last error: ConnectionError: " in message
    assert "Connection refused" in message


def test_a_server_that_only_times_out_names_the_read_timeout() -> None:
    with StartingServer(silent=10_000).running() as server, pytest.raises(ServiceNotReady) as caught:
        wait_until_up(server.url, what="the API server", timeout=0.6, interval=0, probe_timeout=0.2)
    assert f"the API server did not come up at {server.url}" in str(caught.value)
    assert "last error: ReadTimeout: " in str(caught.value)


def test_a_server_answering_5xx_until_the_deadline_names_the_status() -> None:
    server = StartingServer(silent=0, unavailable=10_000)
    expected = r"last error: HTTP 503 Service Unavailable$"
    with server.running(), pytest.raises(ServiceNotReady, match=expected):
        wait_until_up(server.url, what="the API server", timeout=0.3, interval=0.01)


def test_the_process_exiting_ends_the_wait_with_its_exit_code() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    url = _closed_port_url()
    with pytest.raises(ServiceNotReady, match=rf"^the sandbox exited with code 3 before answering on {url}$"):
        wait_until_up(url, what="the sandbox", timeout=600, process=process)


def test_demo_sandbox_start_survives_read_timeouts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The demo's sandbox wait, on a busy machine: its first probes time out instead of being refused."""
    real_get = requests.get
    timeouts = 2

    def busy_get(url: str, **kwargs: object) -> requests.Response:
        nonlocal timeouts
        if timeouts:
            timeouts -= 1
            raise requests.ReadTimeout(f"Read timed out. (read timeout={kwargs.get('timeout')})")
        return real_get(url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests, "get", busy_get)
    with demo.sandbox(tmp_path / "sandbox.log") as url:
        assert timeouts == 0
        assert real_get(f"{url}/_sandbox/clock", timeout=30).status_code == 200
