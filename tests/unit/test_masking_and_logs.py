"""Numbers masked, codes and secrets never written: on ops pages and in every JSON log line."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import logs
from gateway.masking import mask, mask_codes, mask_text


@pytest.mark.parametrize(("number", "shown"), [
    ("+8613800138000", "+86 138****8000"),
    ("+8618600000000", "+86 186****0000"),
    ("+14155550100", "+1 415****0100"),
    ("13800138000", "138****8000"),
])
def test_a_number_is_shown_masked(number: str, shown: str) -> None:
    assert mask(number) == shown


def test_text_keeps_its_words_and_loses_numbers_and_codes() -> None:
    assert mask_text("console SMS to +8613800138000: 验证码123456，5分钟内有效") == (
        "console SMS to +86 138****8000: 验证码******，5分钟内有效")
    assert mask_text("statement 8613800138000-vid-20261107 of 9.50") == "statement 861****8000-vid-20261107 of 9.50"
    assert mask_codes("1234567 and 12345 stay") == "1234567 and 12345 stay"


def _line(message: str, *args: object, exc: BaseException | None = None) -> dict:
    record = logging.LogRecord("gateway.test", logging.ERROR, __file__, 1, message, args,
                               (type(exc), exc, None) if exc else None)
    return json.loads(logs.JsonFormatter().format(record))


def test_a_log_line_is_one_json_object_with_what_happened() -> None:
    line = _line("send to %s failed: %s", "+8613800138000", "timeout")
    assert {k: line[k] for k in ("level", "logger", "message")} == {
        "level": "ERROR", "logger": "gateway.test", "message": "send to +86 138****8000 failed: timeout"}


def test_secrets_and_credentials_never_reach_a_log_line() -> None:
    logs.never_log("s3cret-token-value", None, "short")
    line = _line("calling with %s, Authorization: Basic dXNlcjpwYXNz, token=abc123def and password: hunter22",
                 "s3cret-token-value")
    for secret in ("s3cret-token-value", "dXNlcjpwYXNz", "abc123def", "hunter22"):
        assert secret not in json.dumps(line)


def test_a_traceback_is_cleaned_too() -> None:
    try:
        raise ValueError("code 654321 for +8613800138000 refused")
    except ValueError as exc:
        line = _line("failed", exc=exc)
    assert "654321" not in line["error"] and "13800138000" not in line["error"] and "ValueError" in line["error"]


numbers = st.from_regex(r"\A\+861[3-9]\d{9}\Z")
codes = st.from_regex(r"\A\d{6}\Z")
words = st.text(st.characters(blacklist_categories=("Cs", "Nd")), max_size=20)  # no digit runs into another


@given(number=numbers, code=codes, before=words, between=words.filter(bool), after=words)
def test_no_log_line_holds_a_whole_number_or_a_code(number, code, before, between, after) -> None:
    line = json.dumps(_line("%s%s%s%s%s", before, number, between, code, after), ensure_ascii=False)
    assert number not in line and number[3:] not in line and code not in line
