"""Numbers masked, codes and secrets never written: on ops pages and in every JSON log line."""

from __future__ import annotations

import json
import logging
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs.commands import Code, parse
from dialogs.normalize import normalize
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
# A code is never glued to a Latin letter (it would be part of a longer token: a worker's name, an id) nor follows a
# point after a digit (a decimal fraction: a job's duration, a time's microseconds).
GLUE = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
apart_before = words.filter(lambda w: not w.endswith(GLUE) and w != ".")
apart_after = words.filter(lambda w: not w.startswith(GLUE))


@given(number=numbers, code=codes, before=words, between=apart_before.filter(bool), after=apart_after)
def test_no_log_line_holds_a_whole_number_or_a_code(number, code, before, between, after) -> None:
    line = json.dumps(_line("%s%s%s%s%s", before, number, between, code, after), ensure_ascii=False)
    assert number not in line and number[3:] not in line and code not in line


# What the engine takes for a code (dialogs/normalize.py, dialogs/commands.py): six ASCII or full-width digits, with
# whatever invisible characters normalize drops between them, spaces around, and a point or ! after.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\x00\x07\x1b\x7f"
TRAILING = " .!。．！"


@st.composite
def typed_codes(draw: st.DrawFn) -> tuple[str, str]:
    """(the code, as a subscriber may have typed it)."""
    digits = [draw(st.sampled_from("0123456789")) for _ in range(6)]
    typed = "".join(draw(st.sampled_from([d, chr(ord(d) - ord("0") + ord("０"))])) +
                    draw(st.text(st.sampled_from(INVISIBLE), max_size=2)) for d in digits)
    lead, trail = draw(st.sampled_from(["", " ", "\t", "\u3000"])), draw(st.text(st.sampled_from(TRAILING), max_size=3))
    return "".join(digits), lead + typed + trail


no_digits = st.text(st.characters(exclude_categories=("Cs", "Nd", "No", "Nl")), max_size=20)
SEPARATORS = [" ", ": ", "='", '"', "*", "(", "\n", "验证码", "Code ", "in ", "1*2*", "…"]


@given(typed=typed_codes(), before=no_digits, separator=st.sampled_from(SEPARATORS),
       after=no_digits.filter(lambda w: not w.startswith(GLUE)))
def test_a_code_in_any_form_the_engine_takes_never_reaches_a_log_line(typed, before, separator, after) -> None:
    code, form = typed
    assert parse(normalize(form)) == Code(code)
    message = _line("%s%s%s%s", before, separator, form, after)["message"]
    assert not any(c.isdigit() for c in message.replace(separator, "")), message
    folded = unicodedata.normalize("NFKC", "".join(c for c in message if unicodedata.category(c) not in ("Cc", "Cf")))
    assert code not in folded


@pytest.mark.parametrize("line", [
    "Worker b2106ac0684f43d123456d29eef99e55: started with PID 4242, version 2.6.0",
    "Worker rq:worker:b2106ac0684f43d123456d29eef99e55 stopping on request",
    "default: Job OK (7c1e2f3a-123456ab-4d2b) in 0:00:00.123456s",
    "Successfully completed gateway.delivery.outbound.deliver() job in 0:00:00.004329s",
    "sweep at 2026-11-25T02:00:00.654321+00:00 took 0.250123 s",
    "job 123456abcdef0 and abcdef123456",
])
def test_digits_in_a_longer_token_or_a_decimal_fraction_stay_in_a_log_line(line: str) -> None:
    assert mask_codes(line) == line
    assert _line("%s", line)["message"] == line
