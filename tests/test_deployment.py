"""Static checks of the docker-compose deployment, its image and its set-up (no Docker engine runs here).

The compose file is parsed with PyYAML and its ``${VAR...}`` values are interpolated as compose does, the
Dockerfile with dockerfile-parse; the users' set-up script that airflow-init runs is run for real.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
#: Variables compose must refuse to start without (``${VAR:?message}``).
REQUIRED = {
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_USERS",
    "POSTGRES_PASSWORD",
    "XERO_CLIENT_ID",
    "XERO_CLIENT_SECRET",
}
DEV_TOOLS = {"pytest", "pytest-xdist", "pytest-timeout", "mypy", "ruff", "requests-mock", "dockerfile-parse"}
PREPARE_USERS = REPO / "docker" / "prepare_users.py"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


class InterpolationError(Exception):
    """Compose stops: a required variable is unset or empty."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Return ``value`` with ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
    ``${VAR?error}`` and ``$$`` resolved as docker compose resolves them."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":?", "?") and missing:
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and missing:
            return arg
        if op in (":+", "+"):
            return "" if missing else arg
        return current or ""

    parts = value.split("$$")
    return "$".join(VARIABLE.sub(resolve, part) for part in parts)


def variables(value: Any) -> Iterator[re.Match[str]]:
    """Yield every ``${VAR...}`` reference in a parsed compose document."""
    if isinstance(value, dict):
        for item in value.values():
            yield from variables(item)
    elif isinstance(value, list):
        for item in value:
            yield from variables(item)
    elif isinstance(value, str):
        yield from VARIABLE.finditer(value.replace("$$", ""))


def env_example() -> dict[str, str]:
    """Return the assignments of ``.env.example``."""
    lines = (line.strip() for line in (REPO / ".env.example").read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def filled_env() -> dict[str, str]:
    """``.env.example`` with every required value filled in, as an operator's ``.env``."""
    return {name: value or f"filled-{name.lower()}" for name, value in env_example().items()}


@pytest.fixture(scope="module")
def compose(raw: dict, filled_env: dict[str, str]) -> dict:
    return interpolate(raw, filled_env)


# ---------------------------------------------------------------------------------------------- services
def test_has_every_service(compose: dict) -> None:
    assert set(compose["services"]) == {
        *AIRFLOW_SERVICES,
        "airflow-init",
        "postgres",
        "redis",
        "xero-consent",
    }


@pytest.mark.parametrize("service, command", AIRFLOW_SERVICES.items())
def test_airflow_services_share_the_built_image_and_settings(
    compose: dict, service: str, command: str
) -> None:
    spec = compose["services"][service]
    assert spec["command"] == command
    assert spec["build"] == "."
    env = spec["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert spec["user"] == "50000:0"
    assert "healthcheck" in spec
    assert spec["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert spec["depends_on"]["redis"]["condition"] == "service_healthy"


def test_code_and_data_are_mounted(compose: dict) -> None:
    mounts = dict(volume.split(":", 1) for volume in compose["services"]["airflow-worker"]["volumes"])
    for folder in ("dags", "plugins", "sql"):
        assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
        assert (REPO / folder).is_dir()
    assert mounts["xero-data"] == "/opt/airflow/data"
    assert compose["services"]["airflow-worker"]["environment"]["XERO_DATA_DIR"].startswith(
        "/opt/airflow/data/"
    )
    assert {"xero-data", "postgres-db"} <= set(compose["volumes"])
    for service in ("airflow-apiserver", "airflow-init"):  # the same mounts, plus the users' passwords
        assert set(compose["services"][service]["volumes"]) == {
            *compose["services"]["airflow-worker"]["volumes"],
            "airflow-auth:/opt/airflow/auth",
        }


def test_warehouse_is_its_own_database(compose: dict) -> None:
    env = compose["services"]["airflow-worker"]["environment"]
    assert env["AIRFLOW_CONN_XERO_WAREHOUSE"].endswith("@postgres:5432/xero_warehouse")
    init_mount = compose["services"]["postgres"]["volumes"][1]
    source = init_mount.split(":", 1)[0]
    assert "CREATE DATABASE xero_warehouse" in (REPO / source).read_text()


def test_init_migrates_and_creates_the_warehouse_pool(compose: dict) -> None:
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "set -e" in script
    assert "airflow db migrate" in script
    assert re.search(r"airflow pools set xero_warehouse \d+", script)


def test_xero_connection_is_valid_and_safe_across_workers(compose: dict) -> None:
    """The connection parses as the hook would read it, refreshes under a cross-host lock, and the tasks of a host
    share the rate-limit governor's state on the data volume."""
    from xero.hooks import parse_connection_config

    env = compose["services"]["airflow-worker"]["environment"]
    connection = json.loads(env["AIRFLOW_CONN_XERO_DEFAULT"])
    assert (connection["login"], connection["password"]) == (
        "filled-xero_client_id",
        "filled-xero_client_secret",
    )
    extra = {**connection["extra"], "refresh_token": "from-the-consent-step", "tenant_ids": ""}
    config = parse_connection_config("xero_default", connection["login"], connection["password"], extra)
    assert config.grant_type == "authorization_code"
    lock_conn = config.token_lock.removeprefix("postgres:")
    assert config.token_lock.startswith("postgres:") and f"AIRFLOW_CONN_{lock_conn.upper()}" in env
    assert env["XERO_GOVERNOR_DIR"].startswith("/opt/airflow/data/")


# ---------------------------------------------------------------------------------------------- secrets
@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_secret(
    raw: dict, filled_env: dict[str, str], name: str
) -> None:
    for missing in ({k: v for k, v in filled_env.items() if k != name}, {**filled_env, name: ""}):
        with pytest.raises(
            InterpolationError, match=rf"^required variable {name} is missing a value: set {name}"
        ):
            interpolate(raw, missing)


def test_every_secret_setting_is_required_and_has_no_default(raw: dict) -> None:
    env = raw["x-airflow-common"]["environment"]
    for setting, name in {
        "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "AIRFLOW_USERS",
    }.items():
        assert re.fullmatch(rf"\$\{{{name}:\?set {name} in \.env[^}}]*\}}", env[setting]), setting
    assert {match["name"] for match in variables(raw) if match["op"] == ":?"} == REQUIRED
    secret_like = re.compile(r"SECRET|PASSWORD|KEY|TOKEN", re.I)
    for match in variables(raw):
        if (
            secret_like.search(match["name"])
            and not match["name"].endswith("_FILE")
            and match["op"] in (":-", "-")
        ):
            assert match["arg"] == "", f"{match[0]} has a default"  # an empty default is no credential
    text = (REPO / "docker-compose.yaml").read_text().lower()
    assert "change-me" not in text and "airflow:airflow@" not in text


def test_nobody_gets_in_by_default(compose: dict, raw: dict) -> None:
    env = compose["services"]["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "false"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert (
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "filled-airflow_users"
    )  # from .env, nothing else
    passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert passwords.startswith("/opt/airflow/auth/")
    # airflow-init installs the operator's passwords (from a compose secret) before anything else
    init = compose["services"]["airflow-init"]
    script = init["command"][1]
    assert script.index("prepare_users.py --source /run/secrets/airflow_passwords") < script.index(
        "db migrate"
    )
    assert init["secrets"] == ["airflow_passwords"]
    assert (
        raw["secrets"]["airflow_passwords"]["file"] == "${AIRFLOW_PASSWORDS_FILE:-./airflow-passwords.json}"
    )
    # only the API server and the set-up see the passwords; task processes do not
    for service in ("airflow-worker", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert not [v for v in compose["services"][service]["volumes"] if v.startswith("airflow-auth:")]
    gitignored = (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in gitignored and "airflow-passwords.json" in gitignored


def test_published_ports_listen_on_localhost_only(compose: dict) -> None:
    published = {name: spec.get("ports", []) for name, spec in compose["services"].items()}
    assert published["airflow-apiserver"] == ["127.0.0.1:8080:8080"]
    assert published["xero-consent"] == ["127.0.0.1:8765:8765"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


# ---------------------------------------------------------------------------------------------- .env.example
def test_env_example_lists_every_variable_and_no_secret_value(raw: dict) -> None:
    example = env_example()
    referenced = {match["name"] for match in variables(raw)}
    assert referenced == set(example)
    for name in REQUIRED:
        assert example[name] == "", f".env.example gives {name} a value: every deployment must set its own"
    with pytest.raises(InterpolationError):  # the example as it is does not start
        interpolate(raw, example)


def test_env_example_recipes_generate_valid_secrets() -> None:
    from cryptography.fernet import Fernet

    text = (REPO / ".env.example").read_text()
    recipes = re.findall(r"python3 -c '([^']+)'", text)
    fernet = next(code for code in recipes if "urlsafe_b64encode" in code)
    key = subprocess.run([sys.executable, "-c", fernet], capture_output=True, text=True, check=True).stdout
    assert Fernet(key.strip()).decrypt(Fernet(key.strip()).encrypt(b"refresh-token")) == b"refresh-token"
    users = next(code for code in recipes if "json.dumps" in code)
    generated = json.loads(
        subprocess.run([sys.executable, "-c", users], capture_output=True, text=True).stdout
    )
    assert set(generated) == {"admin"} and len(generated["admin"]) >= 12


# ---------------------------------------------------------------------------------------------- data ownership
def test_data_and_logs_volumes_are_handed_to_the_task_user(compose: dict) -> None:
    init = compose["services"]["airflow-init"]
    assert init["user"] == "0:0"
    script = init["command"][1]
    assert 'chown -R "50000:0" /opt/airflow/data /opt/airflow/logs' in script
    for mount in ("xero-data:/opt/airflow/data", "airflow-logs:/opt/airflow/logs"):
        assert mount in init["volumes"]
    # the chown comes after every command that runs as root and may create files there
    assert script.index("chown -R") > script.index("airflow pools set")


def test_image_creates_the_data_folder_owned_by_the_task_user() -> None:
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    users = [value for instruction, value in instructions if instruction == "USER"]
    assert users and users[-1] == "airflow"  # the image does not end as root
    runs = [value for instruction, value in instructions if instruction == "RUN"]
    assert any(
        "mkdir -p /opt/airflow/data" in run and "chown -R airflow:0 /opt/airflow/data" in run for run in runs
    )


# ---------------------------------------------------------------------------------------------- consent
def test_consent_runs_in_a_container_on_a_local_port(compose: dict, raw: dict) -> None:
    consent = compose["services"]["xero-consent"]
    assert raw["services"]["xero-consent"]["profiles"] == ["consent"]  # `docker compose up` does not start it
    assert consent["command"][:4] == ["python", "-m", "xero", "auth"]
    assert "--no-browser" in consent["command"]
    assert consent["environment"]["XERO_CONSENT_HOST"] == "0.0.0.0"
    assert consent["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert consent["environment"]["AIRFLOW__CORE__FERNET_KEY"] == "filled-airflow_fernet_key"
    readme = (REPO / "README.md").read_text()
    assert "docker compose run --rm --service-ports xero-consent" in readme


def test_consent_redirect_server_listens_where_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    from xero.consent import LISTEN_HOST_ENV, _CallbackServer

    monkeypatch.delenv(LISTEN_HOST_ENV, raising=False)
    server = _CallbackServer(0)
    assert server.server_address[0] == "127.0.0.1"
    server.server_close()
    monkeypatch.setenv(LISTEN_HOST_ENV, "0.0.0.0")
    server = _CallbackServer(0)
    assert server.server_address[0] == "0.0.0.0"
    server.server_close()


# ---------------------------------------------------------------------------------------------- users' set-up
def _prepare_users(
    tmp_path: Path, users: str, passwords: object | None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    source = tmp_path / "airflow-passwords.json"
    if passwords is not None:
        source.write_text(passwords if isinstance(passwords, str) else json.dumps(passwords))
    target = tmp_path / "auth" / "passwords.json"
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(target),
    }
    owner = ["--uid", str(os.getuid()), "--gid", str(os.getgid())]
    command = [sys.executable, str(PREPARE_USERS), "--source", str(source), *owner]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False), target


def test_prepare_users_installs_the_passwords_for_the_api_server(tmp_path: Path) -> None:
    passwords = {"alice": "correct-horse-battery", "bob": "staple-staple-42", "carol": "not-listed-user"}
    result, target = _prepare_users(tmp_path, "alice:admin, bob:Viewer", passwords)
    assert result.returncode == 0, result.stderr
    assert json.loads(target.read_text()) == {"alice": "correct-horse-battery", "bob": "staple-staple-42"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert (target.stat().st_uid, target.stat().st_gid) == (os.getuid(), os.getgid())
    assert (
        result.stdout
        == f"Airflow UI users ready: alice (admin), bob (viewer); passwords installed in {target}\n"
    )
    for password in passwords.values():
        assert password not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "users, passwords, error",
    [
        pytest.param(
            "alice:admin,bob:viewer",
            {"alice": "correct-horse-battery"},
            "has no password for bob",
            id="missing",
        ),
        pytest.param(
            "alice:admin", {"alice": "short"}, "password of alice in .* is shorter than 12", id="short"
        ),
        pytest.param(
            "alice:root", {"alice": "correct-horse-battery"}, "'alice:root' is not 'username:role'", id="role"
        ),
        pytest.param(
            "", {"alice": "correct-horse-battery"}, "lists no user; set AIRFLOW_USERS", id="no-users"
        ),
        pytest.param("alice:admin", None, "no passwords file at .*secrets.token_urlsafe", id="no-file"),
        pytest.param(
            "alice:admin", "{'alice': 'x'}", "is not valid JSON \\(Expecting property name", id="json"
        ),
        pytest.param("alice:admin", ["alice"], "must hold one JSON object", id="not-object"),
    ],
)
def test_prepare_users_refuses_what_airflow_would_fill_with_a_logged_password(
    tmp_path: Path, users: str, passwords: object, error: str
) -> None:
    result, target = _prepare_users(tmp_path, users, passwords)
    assert result.returncode == 1
    assert re.search(f"^error: .*{error}", result.stderr), result.stderr
    assert not target.exists()
    assert "correct-horse-battery" not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------- image and requirements
def _pins(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and line[0] != "#" and line[0] != "-"]
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines}


def test_dockerfile_installs_the_runtime_requirements_and_provider_only() -> None:
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    assert re.fullmatch(r"apache/airflow:3\.\d+\.\d+-python3\.11", parser.baseimage)
    airflow_pin = _pins(REPO / "requirements.txt")["apache-airflow"]
    assert parser.baseimage.startswith(f"apache/airflow:{airflow_pin}-")
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    copies = [value for instruction, value in instructions if instruction == "COPY"]
    assert "--chown=airflow:0 requirements.txt /opt/airflow/requirements.txt" in copies
    assert "--chown=airflow:0 plugins /opt/airflow/xero-provider" in copies
    assert not [value for value in copies if "requirements-dev" in value]
    # the users' set-up that airflow-init runs is in the image where the compose file calls it
    assert "--chown=airflow:0 docker/prepare_users.py /opt/airflow/docker/prepare_users.py" in copies
    compose_text = (REPO / "docker-compose.yaml").read_text()
    assert "python /opt/airflow/docker/prepare_users.py " in compose_text
    runs = [value for instruction, value in instructions if instruction == "RUN"]
    assert "pip install --no-cache-dir -r /opt/airflow/requirements.txt" in runs
    assert "pip install --no-cache-dir --no-deps /opt/airflow/xero-provider" in runs
    assert not [run for run in runs if re.search(r"pytest|mypy|ruff|requirements-dev", run)]


def test_requirements_are_split_into_runtime_and_dev() -> None:
    runtime = _pins(REPO / "requirements.txt")
    dev_text = (REPO / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev_text
    dev = _pins(REPO / "requirements-dev.txt")
    assert runtime and set(dev) >= DEV_TOOLS
    assert not DEV_TOOLS & set(runtime)
    assert not set(runtime) & set(dev), "a package is pinned twice"


def _dependencies(name: str, extras: frozenset[str]) -> Iterator[tuple[str, frozenset[str]]]:
    try:
        requires = distribution(name).requires or []
    except PackageNotFoundError:
        pytest.fail(f"{name} is needed but not installed")
    for line in requires:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in {"", *extras}):
            yield canonicalize_name(requirement.name), frozenset(requirement.extras)


def test_runtime_requirements_are_complete_without_the_dev_tools() -> None:
    """Everything the runtime packages depend on is pinned in requirements.txt (the image's only file), and
    nothing there needs a test or lint tool."""
    runtime = set(_pins(REPO / "requirements.txt"))
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(name, frozenset[str]()) for name in runtime]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        todo.extend(_dependencies(*item))
    needed = {name for name, _ in seen}
    assert needed <= runtime, f"runtime dependencies pinned only in requirements-dev.txt: {needed - runtime}"
    assert not needed & DEV_TOOLS


def test_make_venv_installs_the_dev_requirements() -> None:
    makefile = (REPO / "Makefile").read_text()
    rule = re.search(r"^\$\(STAMP\): (.+)$", makefile, re.M)
    assert rule and {"requirements.txt", "requirements-dev.txt"} <= set(rule.group(1).split())
    assert "pip install --quiet -r requirements-dev.txt" in makefile
