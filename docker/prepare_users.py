"""Install the Airflow UI users' passwords for the simple auth manager before the API server starts.

Run by the compose service ``airflow-init`` (as root). The users and their roles come from
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` (``alice:admin,bob:viewer``); their passwords from a JSON file the
operator writes (``{"alice": "...", "bob": "..."}``), mounted as the compose secret ``airflow_passwords``. Every user
must have a password of at least :data:`MIN_PASSWORD_LENGTH` characters: otherwise Airflow would invent one and print
it in the API server's log, so this refuses instead. The passwords are copied to the file the auth manager reads
(``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE``), mode 0600, owned by the task user. Passwords are never
printed. Standard library only: it runs before anything else is known to work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

MIN_PASSWORD_LENGTH = 12
ROLES = ("viewer", "user", "op", "admin")
USERS_SETTING = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
PASSWORDS_FILE_SETTING = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
GENERATE = (
    "python3 -c 'import json, secrets; print(json.dumps({\"admin\": secrets.token_urlsafe(18)}))' "
    "> airflow-passwords.json"
)


class SetupError(Exception):
    """The users or their passwords are not usable; the message says what to fix."""


def parse_users(setting: str) -> dict[str, str]:
    """Return ``{username: role}`` from ``user:role,user:role``."""
    users: dict[str, str] = {}
    for item in (part.strip() for part in setting.split(",")):
        if not item:
            continue
        name, _, role = item.partition(":")
        if not name or role.lower() not in ROLES:
            raise SetupError(
                f"{USERS_SETTING}: {item!r} is not 'username:role' with a role among {', '.join(ROLES)}"
            )
        users[name] = role.lower()
    if not users:
        raise SetupError(f"{USERS_SETTING} lists no user; set AIRFLOW_USERS in .env, e.g. admin:admin")
    return users


def read_passwords(source: Path, users: dict[str, str]) -> dict[str, str]:
    """Return the passwords of ``users`` from the operator's JSON file, checked."""
    if not source.is_file():
        raise SetupError(f"no passwords file at {source}; create it on the host with: {GENERATE}")
    try:
        passwords = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SetupError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except UnicodeDecodeError:
        raise SetupError(f"{source} is not UTF-8 text") from None
    if not isinstance(passwords, dict):
        raise SetupError(f'{source} must hold one JSON object: {{"username": "password", ...}}')
    missing = [name for name in users if not isinstance(passwords.get(name), str) or not passwords[name]]
    if missing:
        raise SetupError(f"{source} has no password for {', '.join(missing)} (listed in AIRFLOW_USERS)")
    short = [name for name in users if len(passwords[name]) < MIN_PASSWORD_LENGTH]
    if short:
        raise SetupError(
            f"the password of {', '.join(short)} in {source} is shorter than {MIN_PASSWORD_LENGTH} characters"
        )
    return {name: passwords[name] for name in users}


def install(passwords: dict[str, str], target: Path, uid: int, gid: int) -> None:
    """Write ``passwords`` to ``target`` (mode 0600, owned by ``uid:gid``), replacing it in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chown(target.parent, uid, gid)
    target.parent.chmod(0o700)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".passwords-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(passwords, out)
            out.write("\n")
        os.chmod(temporary, 0o600)
        os.chown(temporary, uid, gid)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Check the users and passwords and install them; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/run/secrets/airflow_passwords"))
    parser.add_argument("--target", type=Path, default=None, help=f"default: ${PASSWORDS_FILE_SETTING}")
    parser.add_argument("--uid", type=int, default=int(os.environ.get("AIRFLOW_UID") or 50000))
    parser.add_argument("--gid", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        target = args.target or Path(os.environ.get(PASSWORDS_FILE_SETTING) or "")
        if not str(target) or str(target) == ".":
            raise SetupError(f"{PASSWORDS_FILE_SETTING} is not set: where the API server reads the passwords")
        users = parse_users(os.environ.get(USERS_SETTING, ""))
        install(read_passwords(args.source, users), target, args.uid, args.gid)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    listed = ", ".join(f"{name} ({role})" for name, role in users.items())
    print(f"Airflow UI users ready: {listed}; passwords installed in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
