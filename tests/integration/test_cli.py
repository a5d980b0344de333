"""`tdbot import` and `tdbot outbox` through click's runner, against the test Redis."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from gateway import cli
from gateway.cli import main
from gateway.config import DEFAULT_SECRET
from tests.support.phone import AUTH_TOKEN, BASE_URL, Phone, api_headers, seed_demo

CSV_HEADER = "msisdn,carrier,locale,id,name,service_code,fee_fen,renews_on\n"
CSV_ROWS = [
    "+8613800138000,cmcc,zh,vid,视频会员,SPHY,1500,2026-12-07\n",
    "+8613800138000,cmcc,zh,music,音乐包,YYB,1000,2026-12-07\n",
    "18600000000,,en,news,Mobile News,SJB,500,2026-12-10\n",
]


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def record(msisdn: str = "+8613800138000", **changes: object) -> dict:
    sub = {"id": "vid", "name": "视频会员", "service_code": "SPHY", "fee_fen": 1500, "renews_on": "2026-12-07"}
    return {"msisdn": msisdn, "carrier": "cmcc", "locale": "zh", "subscriptions": [sub], **changes}


@pytest.fixture
def tdbot(redis_url: str, redis, tmp_path: Path):
    """Run `tdbot ARGS` with REDIS_URL at the test database and no `tdbot run` state to pick up."""
    env = {"REDIS_URL": redis_url, "TDBOT_DATA_DIR": str(tmp_path / "data"), "TDBOT_KEY_PREFIX": "tdbot"}

    def run(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def subscriber_keys(redis) -> list[bytes]:
    return list(redis.scan_iter(match="tdbot:{*}:subscriber"))


def test_import_csv(tdbot, tmp_path, client) -> None:
    result = tdbot("import", write(tmp_path, "subs.csv", CSV_HEADER + "".join(CSV_ROWS)))
    assert result.exit_code == 0, result.output
    assert "imported 2 subscribers" in result.output
    cmcc = client.get("/api/v1/subscribers/+8613800138000", headers=api_headers()).get_json()
    assert [(s["id"], s["fee_fen"]) for s in cmcc["subscriptions"]] == [("vid", 1500), ("music", 1000)]
    cucc = client.get("/api/v1/subscribers/+8618600000000", headers=api_headers()).get_json()
    assert (cucc["carrier"], cucc["locale"], cucc["subscriptions"][0]["name"]) == (None, "en", "Mobile News")


def test_import_csv_with_what_was_paid(tdbot, tmp_path, client) -> None:
    header = CSV_HEADER.replace("\n", ",paid_fen\n")
    rows = header + CSV_ROWS[0].replace("\n", ",700\n") + CSV_ROWS[1].replace("\n", ",\n")  # empty: nothing paid
    assert tdbot("import", write(tmp_path, "subs.csv", rows)).exit_code == 0
    cmcc = client.get("/api/v1/subscribers/+8613800138000", headers=api_headers()).get_json()
    assert [(s["id"], s["paid_fen"]) for s in cmcc["subscriptions"]] == [("vid", 700), ("music", 0)]


def test_import_csv_with_a_byte_order_mark(tdbot, tmp_path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (CSV_HEADER + CSV_ROWS[0]).encode())
    assert "imported 1 subscribers" in tdbot("import", str(path)).output


def test_import_json_lines(tdbot, tmp_path, client) -> None:
    text = jsonl(record(), record("+8618900000000", carrier=None, locale="en")) + "\n\n"
    result = tdbot("import", write(tmp_path, "subs.jsonl", text))
    assert result.exit_code == 0, result.output
    assert "imported 2 subscribers" in result.output
    assert client.get("/api/v1/subscribers/+8618900000000", headers=api_headers()).get_json()["locale"] == "en"


def test_import_twice_changes_nothing_more(tdbot, tmp_path, redis) -> None:
    path = write(tmp_path, "subs.jsonl", jsonl(record()))
    tdbot("import", path)
    before = {k: redis.get(k) for k in subscriber_keys(redis)}
    assert tdbot("import", path).exit_code == 0
    assert {k: redis.get(k) for k in subscriber_keys(redis)} == before


BAD_FILES = [
    # name, file, content, words in the error
    ("bad fee in csv", "subs.csv", CSV_HEADER + CSV_ROWS[0] + CSV_ROWS[1].replace("1000", "ten"),
     ["line 3", "fee_fen"]),
    ("bad number in csv", "subs.csv", CSV_HEADER + CSV_ROWS[0] + CSV_ROWS[1].replace("+8613800138000", "123"),
     ["line 3", "phone number"]),
    ("bad date in csv", "subs.csv", CSV_HEADER + CSV_ROWS[0] + CSV_ROWS[2].replace("2026-12-10", "soon"),
     ["line 3", "renews_on"]),
    ("bad carrier in csv", "subs.csv", CSV_HEADER + CSV_ROWS[0].replace("cmcc", "att"), ["carrier"]),
    ("paid over the fee in csv", "subs.csv",
     CSV_HEADER.replace("\n", ",paid_fen\n") + CSV_ROWS[0].replace("\n", ",1600\n"), ["line 2", "paid_fen"]),
    ("bad number in json", "subs.jsonl", jsonl(record(), record("12345")), ["line 2", "phone number"]),
    ("bad fee in json", "subs.jsonl", jsonl(record(), record("+8618600000000", subscriptions=[
        {"id": "x", "name": "x", "service_code": "X", "fee_fen": 1.5, "renews_on": "2026-12-01"}])),
     ["line 2", "fee_fen"]),
    ("id with a slash in csv", "subs.csv", CSV_HEADER + CSV_ROWS[0] + CSV_ROWS[1].replace("music", "music/hd"),
     ["line 3", ".id must be"]),
    ("id with a slash in json", "subs.jsonl", jsonl(record(), record("+8618600000000", subscriptions=[
        {"id": "news/1", "name": "x", "service_code": "X", "fee_fen": 500, "renews_on": "2026-12-01"}])),
     ["line 2", ".id must be"]),
    ("not json", "subs.jsonl", jsonl(record()) + "{oops\n", ["line 2"]),
    ("json list", "subs.jsonl", jsonl(record()) + "[1, 2]\n", ["line 2"]),
]


@pytest.mark.parametrize(("name", "filename", "content", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_line_imports_nothing_and_says_where(tdbot, tmp_path, redis, name, filename, content, words) -> None:
    result = tdbot("import", write(tmp_path, filename, content))
    assert result.exit_code != 0
    for word in [*words, "nothing imported"]:
        assert word in result.output
    assert subscriber_keys(redis) == []


def test_a_file_that_is_not_text_imports_nothing(tdbot, tmp_path, redis) -> None:
    path = tmp_path / "subs.csv"
    path.write_bytes(CSV_HEADER.encode() + b"\xff\xfe\x00garbage\n")
    result = tdbot("import", str(path))
    assert result.exit_code != 0 and "nothing imported" in result.output
    assert subscriber_keys(redis) == []


HALF_A_SURROGATE_PAIR = [
    # the bytes a lone surrogate would be in UTF-8 (ED A0 80), which no UTF-8 reader takes
    ("subs.csv", (CSV_HEADER + CSV_ROWS[0] + CSV_ROWS[1]).encode().replace("音乐包".encode(), b"\xed\xa0\x80"),
     ["line 3", ".name"]),
    # a JSON escape makes one that no UTF-8 (Redis, a log line, a reply) can carry
    ("subs.jsonl", jsonl(record(), record("+8618600000000")).replace("视频会员", "\\ud800视频").encode(),
     ["line 1", ".name"]),
]


@pytest.mark.parametrize(("filename", "content", "words"), HALF_A_SURROGATE_PAIR, ids=["csv", "json"])
def test_half_a_surrogate_pair_imports_nothing_and_names_the_field(tdbot, tmp_path, redis, filename, content, words):
    path = tmp_path / filename
    path.write_bytes(content)
    result = tdbot("import", str(path))
    assert result.exit_code == 1
    for word in [*words, "nothing imported"]:
        assert word in result.output
    assert subscriber_keys(redis) == []


def test_a_missing_file_is_a_usage_error(tdbot, tmp_path) -> None:
    result = tdbot("import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_outbox_prints_what_the_console_sender_sent(tdbot, app, client) -> None:
    seed_demo(app)
    phone = Phone(client, app, "+8613800138000")
    for text in ("TD", "1", "Y"):
        phone.send(text)
    code = phone.last_code()
    phone.send(code)
    phone.deliver()

    output = tdbot("outbox").output
    entries = [line for line in output.splitlines() if not line.startswith(" ")]
    assert len(entries) == 2
    assert "+8613800138000" in entries[0] and code in entries[0] and "退订结果" in entries[1]
    assert "    视频会员已退订" in output
    assert tdbot("outbox", "--limit", "1").output.splitlines()[0] == entries[1]
    assert tdbot("outbox", "--to", "13800138000").output == output
    assert tdbot("outbox", "--to", "+8618600000000").output == ""


def test_outbox_when_nothing_was_sent(tdbot) -> None:
    result = tdbot("outbox")
    assert result.exit_code == 0 and result.output == ""


@pytest.fixture
def run_env(redis_url: str, redis, tmp_path: Path, monkeypatch):
    """The environment `tdbot run` starts from: a Redis, a data directory, no secrets of its own."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TDBOT_DATA_DIR", str(tmp_path / "data"))
    for name in cli.SHARED[1:]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_run_makes_a_random_code_secret_that_the_other_commands_and_restarts_share(run_env) -> None:
    first = cli._run_config()
    cli._write_runtime({**first, "BASE_URL": "http://127.0.0.1:5000"})
    secret = first["TDBOT_SECRET_KEY"]
    assert secret != DEFAULT_SECRET and len(bytes.fromhex(secret)) == 32
    assert cli._config()["TDBOT_SECRET_KEY"] == secret, "tdbot chat / import / worker hash codes alike"
    assert cli._run_config()["TDBOT_SECRET_KEY"] == secret, "a code sent before a restart still matches"


def test_a_secret_in_the_environment_wins_over_the_runtime_file(run_env) -> None:
    cli._write_runtime(cli._run_config())
    run_env.setenv("TDBOT_SECRET_KEY", "ours")
    assert cli._run_config()["TDBOT_SECRET_KEY"] == cli._config()["TDBOT_SECRET_KEY"] == "ours"


def test_the_runtime_file_is_the_owners_alone_even_over_an_older_open_one(run_env, tmp_path) -> None:
    path = tmp_path / "data" / cli.RUNTIME_FILE
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    old_umask = os.umask(0)  # a permissive umask must not widen it either
    try:
        cli._write_runtime({"TWILIO_AUTH_TOKEN": "t0ken"})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["TWILIO_AUTH_TOKEN"] == "t0ken"


@pytest.fixture
def served(app):
    """The test app on a real local port, as `tdbot run` serves it (PUBLIC_BASE_URL is a public https URL)."""
    seed_demo(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize("where", ["environment", "runtime file"])
def test_chat_signs_for_the_public_url_the_app_checks_signatures_against(
    served, redis_url, tmp_path, where
) -> None:
    env = {"REDIS_URL": redis_url, "TDBOT_DATA_DIR": str(tmp_path / "data"), "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    if where == "environment":
        env["PUBLIC_BASE_URL"] = BASE_URL
    else:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / cli.RUNTIME_FILE).write_text(json.dumps({"PUBLIC_BASE_URL": BASE_URL, "BASE_URL": served}))
        env["PUBLIC_BASE_URL"] = ""
    args = ["chat", "--linger", "0", *(["--url", served] if where == "environment" else []), "+8613800138000"]
    result = CliRunner().invoke(main, args, input="0000\n", env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "(HTTP" not in result.output and "视频会员" in result.output
