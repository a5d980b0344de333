"""Packages as the API and the CSV import accept them (gateway/validation.py), for properties over what a
subscriber can really have: up to 100 packages, names of 1-40 characters without | or line breaks and not blank at
either end, fees of 0 to 10,000,000 fen."""

from __future__ import annotations

from hypothesis import strategies as st

MAX_PACKAGES = 100
MAX_NAME = 40
MAX_FEE_FEN = 10_000_000

names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="|\n\r"), min_size=1,
                max_size=MAX_NAME).map(str.strip).filter(bool)
fees = st.one_of(st.integers(0, MAX_FEE_FEN), st.sampled_from([0, 500, 1500, 99_999, MAX_FEE_FEN]))
