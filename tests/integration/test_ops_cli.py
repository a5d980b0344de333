"""`tdbot ops-user`: operators are added with a prompted password (hashed), listed, given a new role, removed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.state import operators
from gateway.state.keys import Keys

PASSWORD = "a long enough password"


@pytest.fixture
def tdbot(redis_url: str, redis, tmp_path: Path):
    env = {"REDIS_URL": redis_url, "TDBOT_DATA_DIR": str(tmp_path / "data"), "TDBOT_KEY_PREFIX": "tdbot"}

    def run(*args: str, typed: str = ""):
        return CliRunner().invoke(main, list(args), env=env, input=typed)

    return run


def test_an_operator_is_added_with_a_prompted_password_kept_hashed(tdbot, redis) -> None:
    result = tdbot("ops-user", "add", "wang", "--role", "agent", typed=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "added operator wang (agent)" in result.output
    assert PASSWORD.encode() not in redis.hget("tdbot:operators", "wang")
    assert operators.signed_in(redis, Keys(), "wang", PASSWORD).role == "agent"
    assert operators.signed_in(redis, Keys(), "wang", "another password") is None


def test_adding_again_changes_role_and_password(tdbot, redis) -> None:
    tdbot("ops-user", "add", "wang", "--role", "viewer", typed=f"{PASSWORD}\n{PASSWORD}\n")
    result = tdbot("ops-user", "add", "wang", "--role", "admin", typed="another long one\nanother long one\n")
    assert "updated operator wang (admin)" in result.output
    assert operators.signed_in(redis, Keys(), "wang", "another long one").role == "admin"
    assert tdbot("ops-user", "list").output == "wang\tadmin\n"


@pytest.mark.parametrize(("args", "typed", "says"), [
    (["--role", "agent"], "short\nshort\n", "at least 10 characters"),
    (["--role", "agent"], f"{PASSWORD}\nsomething else\n", "do not match"),
    (["--role", "root"], "", "'root' is not one of"),
])
def test_a_bad_role_or_password_adds_nobody(tdbot, redis, args, typed, says) -> None:
    result = tdbot("ops-user", "add", "wang", *args, typed=typed)
    assert result.exit_code != 0 and says in result.output
    assert redis.hlen("tdbot:operators") == 0


def test_a_removed_operator_is_gone(tdbot, redis) -> None:
    tdbot("ops-user", "add", "wang", "--role", "agent", typed=f"{PASSWORD}\n{PASSWORD}\n")
    assert tdbot("ops-user", "remove", "wang").exit_code == 0
    assert tdbot("ops-user", "list").output == ""
    assert "no operator wang" in tdbot("ops-user", "remove", "wang").output


# Run in a fresh interpreter: counts the password hashes made and checked from the moment the module is imported.
_HASHES_MADE = """
import json, sys
import werkzeug.security as security
made, checked = [], []
make, check = security.generate_password_hash, security.check_password_hash
security.generate_password_hash = lambda *a, **k: made.append(1) or make(*a, **k)
security.check_password_hash = lambda h, p: checked.append(h.split("$", 1)[0]) or check(h, p)
from redis import Redis
from gateway.state import operators
from gateway.state.keys import Keys
at_import = len(made)
redis, keys = Redis.from_url(sys.argv[1]), Keys(sys.argv[2])
unknown = [operators.signed_in(redis, keys, "nobody-" + str(i), "a long enough password") for i in range(3)]
real = operators.new("wang", "agent", "a long enough password", __import__("datetime").datetime.now()).password_hash
print(json.dumps({"at_import": at_import, "made": len(made), "unknown": unknown, "checked": checked,
                  "method": real.split("$", 1)[0]}))
"""


def test_importing_operators_hashes_nothing_and_an_unknown_name_costs_a_real_check(redis_url: str) -> None:
    """Every process imports the module (the worker, the CLI); only sign-in needs the stand-in hash, made once."""
    run = subprocess.run([sys.executable, "-c", _HASHES_MADE, redis_url, "tdbot-test-nobody"], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["at_import"] == 0, "a password was hashed at import"
    assert seen["unknown"] == [None, None, None] and seen["made"] == 2, "the stand-in hash once, then wang's"
    assert seen["checked"] == [seen["method"]] * 3, "an unknown name is checked as a real password is (same cost)"
