"""Where a USSD session stands after each request, and what the next answer means there. Pure: no Flask, no Redis.

Africa's Talking sends a session's answers so far joined by `*`, so each request's newest answer is read against the
screen the request before it left: a `Position`, kept as that request's record (gateway/channels/ussd.py). An answer
becomes the command an SMS would have carried (`2` on the menu is `TD`, `1` on a confirmation `Y`), and the screen the
step answers with gets its position from the command and the dialog state after it: whether the session goes on
(`CON`) or ends (`END`) follows from that.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass

from dialogs import engine, pages
from dialogs.messages import render_screen
from dialogs.model import CANCEL, CHOOSING, CONFIRMING, VERIFYING, DialogState
from dialogs.segments import USSD_SCREEN

log = logging.getLogger(__name__)

# Positions: what the screen shown offers.
MENU = "menu"  # 1-4: the four menu choices
LIST = "list"  # a number: that package
INFO = "info"  # a listing to read (statements): only its pages
CONFIRM = "confirm"  # 1 confirm, 2 abandon
CODE = "code"  # the six digits; 1 a new code, 2 abandon
END = "end"  # nothing: the session is over
# On any screen but the menu `0` goes back: to the page before, or from a first page to the menu; on a listing `98`
# shows the page after (the engine shows the same page again when there is none).

FIRST = ""  # the command of a session's first request: the engine answers with the first screen
MAIN_MENU = "main menu"  # not a dialog command: the menu again, drawn without a step (nothing there changes)

MENU_CHOICES = {"1": "0000", "2": "TD", "3": "ZD", "4": "HELP"}
KEYS = {"1": "Y", "2": "N"}  # on a confirmation or the code screen
CODE_DIGITS = re.compile(r"[0-9]{6}")
NUMBER = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True)
class Position:
    kind: str
    text: str  # the screen, without a hint
    lang: str = "zh"
    choices: int = 0  # LIST: the packages numbered 1..choices
    paged: bool = False  # the screen is a page of a listing (packages, statements, a confirmation)
    page: int = 0  # the listing's first line on the page shown (0: the first page)
    hint: str = ""  # a line above the screen: the answer before was not one the screen takes

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Position:
        """ValueError when `raw` is not a position."""
        try:
            return cls(**json.loads(raw))
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a USSD position: {raw[:80]!r}") from exc


def position_after(command: str, reply: str, state: DialogState | None) -> Position:
    """The screen `reply` is, after `command` left the dialog in `state` (None: a number we have no record of)."""
    if state is None:
        return Position(END, reply)
    kind = _kind_after(command, state)
    return Position(kind, reply, state.lang or "zh", choices=len(state.options),
                    paged=bool(state.listing) and kind != END, page=state.page_start)


def _kind_after(command: str, state: DialogState) -> str:
    if state.human:  # a person has the conversation: the screen says so, and that is all
        return END
    awaiting = _awaiting(state)
    if command == FIRST:
        return awaiting if awaiting in (CONFIRM, CODE) else MENU
    if state.listing == engine.CONFIRM:
        return awaiting
    if state.listing:  # numbers choose on a cancel's list or query; any other listing is there to read
        return LIST if awaiting == LIST else INFO
    if command in MENU_CHOICES.values():  # a menu choice shows a listing, or says its piece and is done
        return END
    return awaiting


def _awaiting(state: DialogState) -> str:
    """What a cancel under way waits for: a choice, a confirmation, a code; else nothing."""
    if state.intent != CANCEL:
        return END
    return {CHOOSING: LIST, CONFIRMING: CONFIRM, VERIFYING: CODE}.get(state.stage, END)


def ends(position: Position) -> bool:
    return position.kind == END


def command_for(position: Position, answer: str) -> str | None:
    """The command `answer` makes on `position`'s screen: one an SMS could carry, or MAIN_MENU; None if the screen
    does not take it."""
    answer = answer.strip()
    if position.kind == MENU:
        return MENU_CHOICES.get(answer)
    if answer == pages.BACK:
        return answer if position.paged and position.page else MAIN_MENU
    if answer == pages.MORE and position.paged:
        return answer
    if position.kind == LIST:
        return str(int(answer)) if NUMBER.fullmatch(answer) and 1 <= int(answer) <= position.choices else None
    if position.kind == CODE and CODE_DIGITS.fullmatch(answer):
        return answer
    return KEYS.get(answer) if position.kind in (CONFIRM, CODE) else None


def main_menu(lang: str) -> Position:
    return Position(MENU, render_screen(lang, "menu"), lang)


def hinted(position: Position) -> Position:
    """`position` again, under the hint that the answer was not one it takes."""
    return Position(**{**asdict(position), "hint": render_screen(position.lang, "hint")})


def wire(position: Position) -> str:
    """The answer Africa's Talking wants: `CON ` or `END `, then at most 182 characters."""
    body = f"{position.hint}\n{position.text}" if position.hint else position.text
    if len(body) > USSD_SCREEN:  # every screen leaves room for its hint (dialogs/budgets.py): never expected
        log.warning("a USSD screen of %d characters was cut: %r", len(body), body[:40])
        body = body[: USSD_SCREEN - 1] + "…"
    return ("END " if ends(position) else "CON ") + body
