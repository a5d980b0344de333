"""`tdbot ops-user`: operators are added with a prompted password (hashed), listed, given a new role, removed."""

from __future__ import annotations

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
