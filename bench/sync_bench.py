"""Measure the whole sync against the local sandbox: API calls, throughput, memory, pacing and DAG parse time.

Each ``measure_*`` function runs one benchmark and returns a dict of plain numbers; :func:`main` runs them
all, prints a table and writes ``bench/results.json``. The figures are described in ``bench/README.md``.

- :func:`measure_full_sync`: a first sync of one tenant (plan + extract of every entity) against an
  in-process sandbox without limits; API calls seen by the sandbox vs the minimum.
- :func:`measure_noop`: a full sync of two tenants, then an incremental run with no changes.
- :func:`measure_throughput`: extract → transform (normalise + validate) → load into DuckDB of one tenant's
  invoices, the sandbox in its own process (``python -m xero_sandbox --no-limits``), the pipeline in a fresh
  child process so its peak RSS is its own.
- :func:`measure_rate`: a long extract under the sandbox's real per-minute limit, on the sandbox's frozen
  clock that advances only when the client sleeps (time-scaled: minutes of API time in seconds).
- :func:`measure_dag_parse`: ``DagBag`` of ``dags/`` in a fresh interpreter, after Airflow's own imports.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT / "plugins"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

RESULTS = ROOT / "bench" / "results.json"
XERO_CONN = "xero_default"
WAREHOUSE_CONN = "xero_warehouse"
SCHEMA = "xero"
RUN_ID = "bench"
#: ``max_line_items`` the sandbox draws ``1 + Binomial(max - 1, 0.35)`` from: 7 gives 3.1 line items on average.
MAX_LINE_ITEMS = 7
CLOCK_START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


# -- shared set-up ------------------------------------------------------------------------------------------


def set_connections(
    url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    work: Path,
    extra: dict[str, Any] | None = None,
) -> None:
    """Point the ``xero_default`` and ``xero_warehouse`` connections (environment variables) at ``url`` and ``work``."""
    from xero_sandbox import airflow_connection

    conn = airflow_connection(
        url,
        client_id=client_id,
        client_secret=client_secret,
        token_file=work / "tokens.json",
        refresh_token=refresh_token,
        **(extra or {}),
    )
    os.environ["AIRFLOW_CONN_XERO_DEFAULT"] = json.dumps(conn)
    os.environ["AIRFLOW_CONN_XERO_WAREHOUSE"] = json.dumps(
        {"conn_type": "duckdb", "host": str(work / "warehouse.duckdb")}
    )


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """Yield a temporary directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _quiet_logs() -> None:
    import logging

    logging.getLogger("xero").setLevel(logging.WARNING)


def minimum_calls(counts: dict[str, int], tenants: int = 1) -> int:
    """Return the fewest calls a full sync can make: token + connections + one per unpaged entity + pages.

    :param counts: records per entity of one tenant (every tenant alike).
    """
    from xero.entities import ENTITIES, MAX_PAGE_SIZE

    per_tenant = sum(
        max(1, math.ceil(counts[name] / MAX_PAGE_SIZE)) if spec.paged else 1
        for name, spec in ENTITIES.items()
    )
    return 2 + tenants * per_tenant


def _kinds(records: list[Any]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for record in records:
        if record.path.endswith("/connect/token"):
            kinds["token"] += 1
        elif record.path.endswith("/connections"):
            kinds["connections"] += 1
        else:
            kinds[record.path.rsplit("/", 1)[-1]] += 1
    return kinds


# -- full sync and no-op calls -----------------------------------------------------------------------------


def measure_full_sync(n: int) -> dict[str, Any]:
    """Return the API calls of a first sync of one tenant with ``n`` contacts and ``n`` invoices (all entities)."""
    from xero import pipeline
    from xero.entities import ENTITIES
    from xero_sandbox import Sandbox, SandboxConfig

    _quiet_logs()
    sb = Sandbox(SandboxConfig(seed=7, tenants=1, contacts=n, invoices=n, frozen_clock=True).without_limits())
    tenant = sb.tenants[0].tenant_id
    counts = {name: sb.count(tenant, name) for name in ENTITIES}
    with workdir("bench-calls-") as work, sb.serve() as url:
        set_connections(url, sb.config.client_id, sb.config.client_secret, sb.issue_refresh_token(), work)
        sb.reset_requests()
        started = time.perf_counter()
        targets = pipeline.plan(XERO_CONN, WAREHOUSE_CONN, SCHEMA)
        for target in targets:
            pipeline.extract(
                XERO_CONN,
                target["tenant_id"],
                target["entity"],
                target["modified_since"],
                work / "data",
                RUN_ID,
            )
        seconds = time.perf_counter() - started
        records = list(sb.requests)
    calls = len(records)
    least = minimum_calls(counts)
    return {
        "n": n,
        "records": counts,
        "full_sync_calls": calls,
        "min_calls": least,
        "calls_ratio": calls / least,
        "calls_by_endpoint": dict(_kinds(records)),
        "extract_seconds": seconds,
    }


def measure_noop(invoices: int = 1300, tenants: int = 2) -> dict[str, Any]:
    """Return the calls of an incremental run with no changes, after a full sync of ``tenants`` tenants."""
    from xero import pipeline
    from xero.entities import ENTITIES
    from xero_sandbox import Sandbox, SandboxConfig

    _quiet_logs()
    sb = Sandbox(
        SandboxConfig(
            seed=7,
            tenants=tenants,
            contacts=200,
            invoices=invoices,
            clock_start=CLOCK_START,
            frozen_clock=True,
        ).without_limits()
    )

    def run(work: Path) -> None:
        for target in pipeline.plan(XERO_CONN, WAREHOUSE_CONN, SCHEMA):
            extracted = pipeline.extract(
                XERO_CONN,
                target["tenant_id"],
                target["entity"],
                target["modified_since"],
                work / "data",
                RUN_ID,
            )
            pipeline.load(pipeline.transform(extracted), WAREHOUSE_CONN, SCHEMA, RUN_ID)

    with workdir("bench-noop-") as work, sb.serve() as url:
        set_connections(url, sb.config.client_id, sb.config.client_secret, sb.issue_refresh_token(), work)
        run(work)
        sb.clock.advance(3600)
        sb.reset_requests()
        run(work)
        records = list(sb.requests)
    accounting = [r for r in records if r.tenant_id is not None]
    pairs = tenants * len(ENTITIES)
    return {
        "tenants": tenants,
        "entities": len(ENTITIES),
        "noop_calls": len(records),
        "noop_accounting_calls": len(accounting),
        "noop_calls_per_entity": len(accounting) / pairs,
        "noop_calls_by_endpoint": dict(_kinds(records)),
    }


# -- throughput and memory ---------------------------------------------------------------------------------


@contextmanager
def sandbox_process(invoices: int, limits: bool = False) -> Iterator[dict[str, Any]]:
    """Run ``python -m xero_sandbox`` (one tenant) in its own process; yield its grant (url, refresh token…).

    ``grant["ready_s"]`` is the seconds from start until the sandbox answers: interpreter start, generating
    the data and starting the server.
    """
    command = [
        sys.executable,
        "-m",
        "xero_sandbox",
        "--port",
        "0",
        "--tenants",
        "1",
        "--contacts",
        "300",
        "--invoices",
        str(invoices),
        "--max-line-items",
        str(MAX_LINE_ITEMS),
        "--print-refresh-token",
    ]
    if not limits:
        command.append("--no-limits")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        process.stdout.readline()  # the URL; the grant line follows
        grant = json.loads(process.stdout.readline())
        grant["ready_s"] = time.perf_counter() - started
        grant["client_secret"] = "sandbox-secret"
        grant["pid"] = process.pid
        yield grant
    finally:
        process.terminate()
        process.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Return the resident set size of process ``pid`` in MB (0 when it is gone).

    :param field: ``VmRSS`` (now) or ``VmHWM`` (the peak since the process started its program; unlike
        ``ru_maxrss`` it does not carry the parent's size over a fork and exec).
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


#: The timed steps of the throughput run, in order; ``plan`` runs first, untimed (it creates the tables).
STEPS = ("extract", "transform", "load")
#: Run after the timed steps, outside records/s: the marts step's read copy (models built untimed first).
PUBLISH = "publish"

#: What each step process imports before its clock starts: the fixed start-up cost of an Airflow task.
_STEP_IMPORTS = {
    "plan": ("xero.pipeline",),
    "extract": ("xero.pipeline", "xero.hooks"),
    "transform": ("xero.pipeline", "xero.normalize", "xero.validate", "great_expectations"),
    "load": ("xero.pipeline", "xero.warehouse", "duckdb", "airflow.providers.duckdb.hooks.duckdb"),
    PUBLISH: ("xero.pipeline", "xero.warehouse.publish", "duckdb", "airflow.providers.duckdb.hooks.duckdb"),
}


def _publish_step() -> dict[str, Any]:
    """Publish the read copy of the loaded warehouse, then again with nothing changed; return both figures."""
    from xero.warehouse.publish import publish_read_copy

    first = publish_read_copy(WAREHOUSE_CONN)
    again = publish_read_copy(WAREHOUSE_CONN)
    assert first is not None and again is not None and first.published and not again.published
    warehouse = Path(json.loads(os.environ["AIRFLOW_CONN_XERO_WAREHOUSE"])["host"])
    return {
        "publish_s": first.seconds,
        "publish_noop_s": again.seconds,
        "read_copy_mb": first.size_bytes / 1e6,
        "warehouse_mb": warehouse.stat().st_size / 1e6,
    }


def step_child(work: Path, step: str, profile: Path | None = None) -> dict[str, Any]:
    """Run one step of the throughput run in this process, as an Airflow task process runs it.

    Reads the previous step's result from ``work``, imports what the step needs (untimed), times the step
    and returns its result with the seconds and this process's memory.
    """
    import importlib

    grant = json.loads((work / "grant.json").read_text())
    _quiet_logs()
    set_connections(grant["url"], grant["client_id"], grant["client_secret"], grant["refresh_token"], work)
    for module in _STEP_IMPORTS[step]:
        importlib.import_module(module)
    from xero import pipeline

    if step == PUBLISH:  # the marts step builds the models first
        from xero.warehouse import Warehouse

        Warehouse.from_conn_id(WAREHOUSE_CONN, schema=SCHEMA).run_sql_dir(ROOT / "sql")
    rss_after_imports = _rss_mb()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    sandbox_cpu = _cpu_seconds(grant["pid"])
    started = time.perf_counter()
    if step == "plan":
        output: Any = pipeline.plan(XERO_CONN, WAREHOUSE_CONN, SCHEMA, entities=["invoices"])[0]
    elif step == "extract":
        target = _step_output(work, "plan")
        output = pipeline.extract(
            XERO_CONN, target["tenant_id"], "invoices", target["modified_since"], work / "data", RUN_ID
        )
    elif step == "transform":
        output = pipeline.transform(_step_output(work, "extract"))
    elif step == PUBLISH:
        output = _publish_step()
    else:
        output = pipeline.load(_step_output(work, "transform"), WAREHOUSE_CONN, SCHEMA, RUN_ID)
    seconds = time.perf_counter() - started
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    figures = {
        "output": output,
        "seconds": seconds,
        "sandbox_cpu_s": _cpu_seconds(grant["pid"]) - sandbox_cpu,
        "rss_after_imports_mb": rss_after_imports,
        "peak_rss_mb": _rss_mb(field="VmHWM"),
    }
    (work / f"{step}.json").write_text(json.dumps(figures))
    return figures


def _step_output(work: Path, step: str) -> Any:
    return json.loads((work / f"{step}.json").read_text())["output"]


def _run_step(work: Path, step: str, profile: Path | None, rss_cap_mb: float) -> dict[str, Any] | str:
    """Run ``python -m bench --child WORK --step STEP``; return its figures, or why it was stopped."""
    command = [sys.executable, "-m", "bench", "--child", str(work), "--step", step]
    if profile is not None:
        command += ["--profile", str(profile)]
    log = work / f"{step}.log"  # a file, not a pipe: a chatty step never blocks on a full pipe
    with log.open("w") as output:
        child = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        peak = 0.0
        while child.poll() is None:
            peak = max(peak, _rss_mb(child.pid))
            if peak > rss_cap_mb:
                child.kill()
                child.wait()
                return f"the {step} process passed the {rss_cap_mb:.0f} MB RSS cap"
            time.sleep(0.1)
    if child.returncode:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the {step} process failed with exit code {child.returncode}:\n{tail}")
    figures: dict[str, Any] = json.loads((work / f"{step}.json").read_text())
    return figures


def measure_throughput(
    invoices: int, profile: Path | None = None, rss_cap_mb: float = 6144
) -> dict[str, Any]:
    """Sync ``invoices`` invoices from a sandbox process into DuckDB, each step in a fresh process; return figures.

    The steps run one after the other, each in its own process as Airflow runs each task: ``plan`` (untimed),
    then extract, transform and load, timed after their imports. A step process is killed when its RSS
    passes ``rss_cap_mb`` (the machine is shared): the figures then say so (``aborted``), keep the steps that
    finished, and ``records_per_s`` is ``None``.

    :param profile: write a cProfile of each timed step to ``<profile>.<step>``.
    """
    figures: dict[str, Any] = {"invoices": invoices, "steps": {}, "peak_rss_mb_by_step": {}}
    figures["rss_after_imports_mb_by_step"] = {}
    with workdir("bench-throughput-") as work, sandbox_process(invoices) as grant:
        figures["sandbox_ready_s"] = grant["ready_s"]
        (work / "grant.json").write_text(json.dumps(grant))
        for step in ("plan", *STEPS):
            step_profile = profile.with_name(f"{profile.name}.{step}") if profile and step != "plan" else None
            done = _run_step(work, step, step_profile, rss_cap_mb)
            if isinstance(done, str):
                figures.update(aborted=done, records_per_s=None)
                figures["peak_rss_mb"] = max([rss_cap_mb, *figures["peak_rss_mb_by_step"].values()])
                return figures
            if step == "plan":
                continue
            figures["steps"][step] = done["seconds"]
            figures["peak_rss_mb_by_step"][step] = done["peak_rss_mb"]
            figures["rss_after_imports_mb_by_step"][step] = done["rss_after_imports_mb"]
            if step == "extract":
                figures["records"] = done["output"]["records"]
                figures["api_calls"] = done["output"]["api_calls"]
                figures["sandbox_cpu_s_during_extract"] = done["sandbox_cpu_s"]
            if step == "load":
                figures["inserted"] = done["output"]["inserted"]
        done = _run_step(work, PUBLISH, None, rss_cap_mb)
        if isinstance(done, str):
            figures["publish_aborted"] = done
        else:
            figures.update(done["output"])
            figures["peak_rss_mb_by_step"][PUBLISH] = done["peak_rss_mb"]
    figures["seconds"] = sum(figures["steps"].values())
    figures["records_per_s"] = figures["records"] / figures["seconds"]
    figures["peak_rss_mb"] = max(figures["peak_rss_mb_by_step"].values())
    return figures


# -- pacing under the real per-minute limit ------------------------------------------------------------------


def measure_rate(calls: int = 300, page_size: int = 100) -> dict[str, Any]:
    """Extract ``calls`` pages of invoices under the default limits on a time-scaled clock; return the pacing.

    The sandbox clock is frozen and shared with the client: it advances only when the client sleeps, so a
    sync of several API minutes takes seconds and the figures are per sandbox (API) minute.
    """
    from xero.entities import INVOICES
    from xero.hooks import XeroHook
    from xero_sandbox import Sandbox, SandboxConfig

    _quiet_logs()
    sb = Sandbox(
        SandboxConfig(
            seed=7,
            tenants=1,
            contacts=100,
            invoices=calls * page_size,
            clock_start=CLOCK_START,
            frozen_clock=True,
        )
    )
    tenant = sb.tenants[0].tenant_id
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        sb.clock.advance(max(seconds, 0.0))

    with workdir("bench-rate-") as work, sb.serve() as url:
        set_connections(
            url,
            sb.config.client_id,
            sb.config.client_secret,
            sb.issue_refresh_token(),
            work,
            {"page_size": page_size, "tenant_ids": [tenant]},
        )
        hook = XeroHook(sleep=sleep, clock=sb.clock.timestamp)  # retry waits (Retry-After) sleep too
        sb.reset_requests()
        start = sb.clock.timestamp()
        wall = time.perf_counter()
        pages = sum(1 for _ in hook.iter_pages(tenant, INVOICES, None))
        wall = time.perf_counter() - wall
        elapsed = sb.clock.timestamp() - start
        records = [r for r in sb.requests if r.tenant_id is not None]
    accepted = [r.at.timestamp() for r in records if r.status == 200 and r.at is not None]
    first = accepted[0] if accepted else start
    per_window = Counter(int((at - first) // 60) for at in accepted)
    full = [per_window[w] for w in sorted(per_window)[:-1]] or [len(accepted)]
    return {
        "pages": pages,
        "accounting_calls": len(records),
        "throttled_429s": sum(1 for r in records if r.status == 429),
        "minute_limit": sb.config.minute_limit,
        "api_minutes": elapsed / 60,
        "calls_per_min_sustained": statistics.mean(full),
        "calls_per_min_overall": len(accepted) / (elapsed / 60) if elapsed else float(len(accepted)),
        "slept_s": sum(slept),
        "wall_s": wall,
    }


# -- DAG parse time ----------------------------------------------------------------------------------------

_PARSE_SCRIPT = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "dags": len(bag.dags), "errors": len(bag.import_errors)}))
"""


def measure_dag_parse(repeats: int = 3) -> dict[str, Any]:
    """Return the median seconds ``DagBag`` takes on ``dags/`` in a fresh interpreter (Airflow already imported)."""
    runs = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    for _ in range(repeats):
        output = subprocess.run(
            [sys.executable, "-c", _PARSE_SCRIPT, str(ROOT / "dags")],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    return {
        "dag_parse_s": statistics.median(run["seconds"] for run in runs),
        "dag_parse_runs_s": [run["seconds"] for run in runs],
        "dags": runs[0]["dags"],
        "import_errors": runs[0]["errors"],
    }


# -- machine, table, main ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Return the CPU model, cores and RAM of this machine."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "nproc": os.cpu_count(), "ram_gb": round(ram, 1), "python": platform.python_version()}


def collect(
    call_sizes: list[int],
    throughput_sizes: list[int],
    rate_calls: int,
    profile: Path | None = None,
    log: Any = print,
    dag_repeats: int = 3,
    rss_cap_mb: float = 6144,
) -> dict[str, Any]:
    """Run every benchmark and return the results (headline keys + details per size)."""
    results: dict[str, Any] = {"machine": machine(), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    results["full_sync"] = {}
    for n in call_sizes:
        log(f"full sync calls, N = {n:,} ...")
        results["full_sync"][str(n)] = figure = measure_full_sync(n)
        for key in ("full_sync_calls", "min_calls", "calls_ratio"):
            results[f"{key}_{n}"] = figure[key]
            results[key] = figure[key]  # the largest N ends up as the headline
    log("no-op incremental run ...")
    results["noop"] = noop = measure_noop()
    results["noop_calls_per_entity"] = noop["noop_calls_per_entity"]
    results["throughput"] = {}
    for n in throughput_sizes:
        log(f"throughput, {n:,} invoices ...")
        last = n == throughput_sizes[-1]
        results["throughput"][str(n)] = figure = measure_throughput(n, profile if last else None, rss_cap_mb)
        results[f"records_per_s_{n}"] = figure["records_per_s"]
        results[f"peak_rss_mb_{n}"] = figure["peak_rss_mb"]
        if figure["records_per_s"] is not None:  # the largest run that finished
            results["records_per_s"] = figure["records_per_s"]
            results["records_per_s_invoices"] = n
        results["peak_rss_mb"] = max(results.get("peak_rss_mb", 0.0), figure["peak_rss_mb"])
        for key in ("publish_s", "read_copy_mb"):  # the largest size ends up as the headline
            if key in figure:
                results[f"{key}_{n}"] = results[key] = figure[key]
    log("pacing under the per-minute limit ...")
    results["rate"] = rate = measure_rate(rate_calls)
    results["calls_per_min_sustained"] = rate["calls_per_min_sustained"]
    results["throttled_429s"] = rate["throttled_429s"]
    log("DAG parse ...")
    results["dag"] = dag = measure_dag_parse(dag_repeats)
    results["dag_parse_s"] = dag["dag_parse_s"]
    return results


def table(results: dict[str, Any]) -> str:
    """Return the results as an aligned text table with the targets."""
    rows = []
    for n, fig in results["full_sync"].items():
        rows.append(
            (f"full sync calls, N={int(n):,}", f"{fig['full_sync_calls']} (min {fig['min_calls']})", "= min")
        )
        rows.append((f"calls ratio, N={int(n):,}", f"{fig['calls_ratio']:.3f}", "1.000"))
    rows.append(("no-op calls per tenant × entity", f"{results['noop_calls_per_entity']:.2f}", "1"))
    for n, fig in results["throughput"].items():
        speed = f"{fig['records_per_s']:,.0f}" if fig.get("records_per_s") else str(fig.get("aborted"))
        rows.append((f"records/s, {int(n):,} invoices", speed, "≥ 50,000"))
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in fig["steps"].items())
        rows.append((f"  steps, {int(n):,}", steps, ""))
        rows.append((f"peak RSS MB, {int(n):,} invoices", f"{fig['peak_rss_mb']:,.0f}", "< 512, flat"))
        rows.append((f"sandbox ready s, {int(n):,} invoices", f"{fig['sandbox_ready_s']:.1f}", "< 60"))
        if "publish_s" in fig:
            rows.append(
                (
                    f"read copy, {int(n):,} invoices",
                    f"{fig['publish_s']:.1f}s (unchanged {fig['publish_noop_s']:.2f}s), {fig['read_copy_mb']:,.0f} MB",
                    f"warehouse {fig['warehouse_mb']:,.0f} MB",
                )
            )
    rate = results["rate"]
    rows.append(
        (
            "calls/min sustained",
            f"{rate['calls_per_min_sustained']:.1f}",
            f"≥ {0.95 * rate['minute_limit']:.0f}, ≤ {rate['minute_limit']}",
        )
    )
    rows.append(("429s in a long sync", f"{rate['throttled_429s']} of {rate['accounting_calls']}", "0"))
    rows.append(("DAG parse s", f"{results['dag_parse_s']:.3f}", "< 0.3"))
    width = max(len(r[0]) for r in rows)
    value = max(len(r[1]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>{value}}  target", "-" * (width + value + 12)]
    lines += [f"{a:<{width}}  {b:>{value}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print a table and write ``bench/results.json``."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=main.__doc__)
    parser.add_argument(
        "--invoices", type=int, default=1_000_000, help="invoices of the throughput run (default 1,000,000)"
    )
    parser.add_argument(
        "--rss-sizes",
        default="100000",
        help="further throughput/RSS sizes run before --invoices (default 100000)",
    )
    parser.add_argument("--call-sizes", default="10000,100000", help="N of the full-sync call counts")
    parser.add_argument("--rate-calls", type=int, default=300, help="pages of the paced sync (default 300)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a cProfile of each step of the largest throughput run to FILE.<step>",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="results file (default bench/results.json)"
    )
    parser.add_argument(
        "--dag-repeats", type=int, default=3, help="fresh interpreters parsing dags/ (default 3)"
    )
    parser.add_argument(
        "--rss-cap-mb",
        type=float,
        default=6144,
        help="kill the pipeline process above this RSS (default 6144)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--step", choices=("plan", *STEPS, PUBLISH), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:  # a step process of measure_throughput
        step_child(args.child, args.step, args.profile)
        return 0

    sizes = sorted({*_sizes(args.rss_sizes), args.invoices})
    logging.getLogger().setLevel(logging.WARNING)
    results = collect(
        _sizes(args.call_sizes),
        sizes,
        args.rate_calls,
        args.profile,
        log=lambda m: print(m, flush=True),
        dag_repeats=args.dag_repeats,
        rss_cap_mb=args.rss_cap_mb,
    )
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.output}")
    return 0
