"""What a message means: raw text → normalize → Command, as a table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs import commands as cmds
from dialogs.commands import Cancel, Code, Keyword, Numbers, Unknown, parse
from dialogs.normalize import normalize
from tests.support.digits import DIGIT_SCRIPTS, SCRIPT_NAMES, in_script

TABLE = [
    # cancelling, with and without a target
    ("TD", Cancel()),
    ("td", Cancel()),
    ("TD 2", Cancel(numbers=(2,))),
    ("TD2", Cancel(numbers=(2,))),
    ("TD 1,3", Cancel(numbers=(1, 3))),
    ("TD 1，3", Cancel(numbers=(1, 3))),
    ("TD 1 3", Cancel(numbers=(1, 3))),
    ("TD ALL", Cancel(everything=True)),
    ("td all", Cancel(everything=True)),
    ("TD 全部", Cancel(everything=True)),
    ("全部退订", Cancel(everything=True)),
    ("退订全部", Cancel(everything=True)),
    ("TD 视频", Cancel(query="视频")),
    ("TD SPHY", Cancel(query="SPHY")),
    ("td sphy", Cancel(query="SPHY")),
    ("退订", Cancel()),
    ("退定", Cancel()),
    ("退订 2", Cancel(numbers=(2,))),
    ("退订视频", Cancel(query="视频")),
    ("ＴＤ１", Cancel(numbers=(1,))),
    ("ｔｄ　ａｌｌ", Cancel(everything=True)),
    ("TD。", Cancel()),
    # read-only and service keywords
    ("0000", Keyword(cmds.QUERY)),
    ("查询", Keyword(cmds.QUERY)),
    ("查寻", Keyword(cmds.QUERY)),
    ("ZD", Keyword(cmds.BILL)),
    ("zd", Keyword(cmds.BILL)),
    ("账单", Keyword(cmds.BILL)),
    ("帐单", Keyword(cmds.BILL)),
    ("HELP", Keyword(cmds.HELP)),
    ("help", Keyword(cmds.HELP)),
    ("帮助", Keyword(cmds.HELP)),
    ("?", Keyword(cmds.HELP)),
    ("？", Keyword(cmds.HELP)),
    ("人工", Keyword(cmds.HUMAN)),
    ("KF", Keyword(cmds.HUMAN)),
    ("客服", Keyword(cmds.HUMAN)),
    ("STOP", Keyword(cmds.STOP)),
    ("stop", Keyword(cmds.STOP)),
    ("R", Keyword(cmds.STOP)),
    ("拒收", Keyword(cmds.STOP)),
    ("UNSUBSCRIBE", Keyword(cmds.STOP)),
    ("START", Keyword(cmds.START)),
    ("Y", Keyword(cmds.YES)),
    ("y", Keyword(cmds.YES)),
    ("Ｙ", Keyword(cmds.YES)),
    ("YES", Keyword(cmds.YES)),
    ("是", Keyword(cmds.YES)),
    ("N", Keyword(cmds.NO)),
    ("no", Keyword(cmds.NO)),
    ("否", Keyword(cmds.NO)),
    # replies to a list, and codes
    ("1", Numbers((1,))),
    ("1，3", Numbers((1, 3))),
    ("1,3", Numbers((1, 3))),
    ("1 3", Numbers((1, 3))),
    ("3,1,3", Numbers((3, 1))),
    ("123456", Code("123456")),
    ("１２３４５６", Code("123456")),
    (" 123456 ", Code("123456")),
    ("12345", Numbers((12345,))),
    ("1234567", Numbers((1234567,))),
    # whole-message keywords only, and things that are not commands
    ("STOP PLEASE", Unknown("STOP PLEASE")),
    ("please stop", Unknown("PLEASE STOP")),
    ("HELP ME", Unknown("HELP ME")),
    ("YES PLEASE", Unknown("YES PLEASE")),
    ("TDX", Unknown("TDX")),
    ("TODAY", Unknown("TODAY")),
    ("0", Unknown("0")),
    ("全部", Unknown("全部")),
    ("你好", Unknown("你好")),
    ("", Unknown("")),
    ("A1B2", Unknown("A1B2")),
]


@pytest.mark.parametrize(("raw", "expected"), TABLE, ids=[raw or "<empty>" for raw, _ in TABLE])
def test_what_each_message_asks_for(raw: str, expected: cmds.Command) -> None:
    assert parse(normalize(raw)) == expected


@pytest.mark.parametrize(("script", "digits", "code", "choice"), DIGIT_SCRIPTS, ids=SCRIPT_NAMES)
def test_a_code_is_ascii_or_full_width_digits_and_a_choice_may_also_be_circled(script: str, digits: str, code: bool,
                                                                                choice: bool) -> None:
    typed, two = in_script(digits, "424242"), in_script(digits, "2")
    numbers = Numbers((4, 2)) if choice else Unknown(typed)
    assert parse(normalize(typed)) == (Code("424242") if code else numbers)
    assert parse(normalize(two)) == (Numbers((2,)) if choice else Unknown(two))
    assert parse(normalize(f"TD {two}")) == (Cancel(numbers=(2,)) if choice else Cancel(query=two))


@pytest.mark.parametrize("keyword", sorted(cmds.KEYWORDS))
def test_every_keyword_is_recognised_only_as_a_whole_message(keyword: str) -> None:
    assert parse(normalize(keyword)) == Keyword(cmds.KEYWORDS[keyword])
    assert not isinstance(parse(normalize(f"{keyword} PLEASE")), Keyword)


@given(st.text(max_size=300))
def test_parse_never_raises_and_always_answers_a_command(text: str) -> None:
    assert isinstance(parse(normalize(text)), (Cancel, Keyword, Numbers, Code, Unknown))


@given(st.from_regex(r"\A[0-9]{6}\Z"))
def test_six_digits_are_a_code_unless_a_keyword(digits: str) -> None:
    command = parse(normalize(digits))
    assert command == Code(digits)
