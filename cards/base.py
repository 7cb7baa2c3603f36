"""Small shared pieces of every card: the card envelope, headings, facts, notices, buttons, ShowCards."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from microsoft_teams.cards import (
    ActionSet,
    AdaptiveCard,
    CardElement,
    Container,
    Fact,
    FactSet,
    OpenUrlAction,
    ShowCardAction,
    SubmitAction,
    TextBlock,
)

from cards.text import escape_line

CARD_VERSION = "1.5"
MAX_CARD_BYTES = 28 * 1024  # Teams refuses larger cards; ours stay far under it
MAX_REFRESH_USERS = 60  # Teams refreshes automatically for at most 60 userIds

_HTTP = re.compile(r"^https?://[^\s<>\"'\\]+$", re.IGNORECASE)

# Notice styles: the container style and the text colour that go with it.
STYLES = {
    "default": ("default", "Default"),
    "good": ("good", "Good"),
    "attention": ("attention", "Attention"),
    "warning": ("warning", "Warning"),
    "accent": ("accent", "Accent"),
}


def to_dict(card: AdaptiveCard) -> dict[str, Any]:
    """The card JSON Teams receives."""
    return card.model_dump(by_alias=True, exclude_none=True)


def build(body: Sequence[CardElement], *, refresh: Any = None, fallback_text: str | None = None) -> dict[str, Any]:
    card = AdaptiveCard(version=CARD_VERSION, body=list(body), refresh=refresh, fallback_text=fallback_text)
    return to_dict(card)


def sub_card(body: Sequence[CardElement]) -> AdaptiveCard:
    """The card inside an Action.ShowCard."""
    return AdaptiveCard(version=CARD_VERSION, body=list(body))


def heading(text: str, *, subtitle: str | None = None) -> list[CardElement]:
    """A title (already-safe markdown) and an optional subtle line under it."""
    items: list[CardElement] = [TextBlock(text=text, style="heading", size="Large", weight="Bolder", wrap=True)]
    if subtitle:
        items.append(TextBlock(text=subtitle, is_subtle=True, spacing="None", wrap=True))
    return items


def para(text: str, *, subtle: bool = False, color: str | None = None, weight: str | None = None,
         spacing: str | None = None, separator: bool | None = None) -> TextBlock:
    """A wrapped TextBlock; `text` must already be safe markdown (escape user text first)."""
    return TextBlock(text=text, wrap=True, is_subtle=subtle or None, color=color, weight=weight, spacing=spacing,
                     separator=separator)


def section(title: str) -> TextBlock:
    return TextBlock(text=title, weight="Bolder", wrap=True, spacing="Medium", separator=True)


def facts(pairs: Iterable[tuple[str, str | None]]) -> FactSet:
    """A FactSet from (title, value) pairs; values are user data and are escaped here, None ones skipped."""
    return FactSet(facts=[Fact(title=title, value=escape_line(value) or "—") for title, value in pairs
                          if value is not None])


def notice(text: str, style: str = "warning") -> Container:
    """A coloured box at the top of a card; `text` must already be safe markdown."""
    container_style, color = STYLES.get(style, STYLES["default"])
    return Container(style=container_style, items=[TextBlock(text=text, wrap=True, color=color)])


def actions(*items: Any) -> ActionSet:
    return ActionSet(actions=[a for a in items if a is not None])


def show_card(title: str, body: Sequence[CardElement]) -> ShowCardAction:
    return ShowCardAction(title=title, card=sub_card(body))


def is_http_url(url: str | None) -> bool:
    return bool(url and _HTTP.match(url.strip()))


def open_url(title: str, url: str) -> OpenUrlAction | None:
    """A link button, only for http(s) URLs (a javascript: or file: link never reaches a card)."""
    return OpenUrlAction(title=title, url=url.strip()) if is_http_url(url) else None


def command_button(title: str, command: str) -> SubmitAction:
    """A button that sends `command` as if the person had typed it (Teams messageBack)."""
    return SubmitAction(title=title, data={"msteams": {"type": "messageBack", "text": command,
                                                       "displayText": command}})
