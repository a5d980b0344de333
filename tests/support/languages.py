"""Counting how often a reply language is chosen from a message's words (`dialogs.language.reply_lang`)."""

from __future__ import annotations

import pytest

from dialogs import language


def count_guesses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list that grows by one number each time a reply language is guessed for a message (as it was)."""
    guessed: list[str] = []
    of_number = language.lang_of_number

    def counted(msisdn: str | None) -> str:
        guessed.append(msisdn or "")
        return of_number(msisdn)

    monkeypatch.setattr(language, "lang_of_number", counted)
    return guessed
