"""Records as the API and the CSV import accept them (gateway/validation.py), for properties over what a
subscriber can really have: up to 100 packages, names of 1-40 characters without | or line breaks and not blank at
either end, fees of 0 to 10,000,000 fen, paid 0 to the fee. Draw imported records from here only."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from dialogs.budgets import NAME_CHARS
from dialogs.model import Subscription

MAX_PACKAGES = 100
MAX_NAME = 40
MAX_FEE_FEN = 10_000_000

names = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="|\n\r"), min_size=1,
                max_size=MAX_NAME).map(str.strip).filter(bool)
fees = st.one_of(st.integers(0, MAX_FEE_FEN), st.sampled_from([0, 500, 1500, 99_999, MAX_FEE_FEN]))

# What the segment budgets are sized for (dialogs/budgets.py): a page or message of a listing holds at least
# budgets.PACKAGES packages of at most 999.99 元 a month named in at most budgets.NAME_CHARS characters (any the API
# takes in one UTF-16 unit).
ORDINARY_FEE_FEN = 99_999
ordinary_names = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",), exclude_characters="|\n\r"),
                         min_size=1, max_size=NAME_CHARS).map(str.strip).filter(bool)
ordinary_fees = st.one_of(st.integers(0, ORDINARY_FEE_FEN), st.just(ORDINARY_FEE_FEN))


@st.composite
def packages(draw: st.DrawFn, ids: st.SearchStrategy[str], renews_on: st.SearchStrategy[date]) -> Subscription:
    """One package as imported: any name and fee the API takes, paid anything from nothing to the fee."""
    fee = draw(fees)
    return Subscription(id=draw(ids), name=draw(names), service_code=draw(st.sampled_from(["SPHY", "X"])), fee_fen=fee,
                        renews_on=draw(renews_on), paid_fen=draw(st.integers(0, fee)))
