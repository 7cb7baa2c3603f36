"""Escaping user text for card markdown and email HTML, and dates and times as people in Lima read them."""

from __future__ import annotations

import html
import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

LIMA = ZoneInfo("America/Lima")

# Characters that Adaptive Cards' markdown (and the CommonMark engines hosts use) may read as syntax
# anywhere in a line. A backslash before ASCII punctuation makes it literal in CommonMark; "{" is escaped
# so neither "${…}" (templating) nor "{{DATE(…)}}" (Teams date functions) can form.
_INLINE = re.compile(r"([\\`*_\[\]()<>|~{}!$])")
# Syntax that only counts at the start of a line: headings, list items, quotes, numbered lists.
_LINE_START = re.compile(r"^([#+\-=])|^(\d+)([.)])", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# A bare URL is linkified by hosts even without markdown: a word joiner after the scheme's colon stops it.
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*):(?=//)")
_WORD_JOINER = "\u2060"


def _normalise(text: str | None) -> str:
    text = _CONTROL.sub("", str(text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))
    # Leading spaces would make an indented code block; trailing ones a hard break.
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def escape(text: str | None) -> str:
    """User text made literal for a TextBlock or Fact (markdown): no emphasis, links, lists or templates."""
    text = _normalise(text)
    text = _INLINE.sub(r"\\\1", text)
    text = _LINE_START.sub(lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", text)
    return _SCHEME.sub(lambda m: m.group(1) + ":" + _WORD_JOINER, text)


def escape_line(text: str | None, limit: int | None = None) -> str:
    """Like :func:`escape`, on one line (titles, names, facts); cut at `limit` characters with "…"."""
    line = " ".join(_normalise(text).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return escape(line)


def plain(text: str | None, limit: int | None = None) -> str:
    """One line of user text for places that show no markdown (button titles, choices, input values)."""
    line = " ".join(_CONTROL.sub("", str(text or "")).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def plain_html(text: str | None) -> str:
    """User text for an HTML email body: escaped, with its line breaks kept."""
    return html.escape(_normalise(text), quote=True).replace("\n", "<br>\n")


def lima(moment: datetime) -> datetime:
    """`moment` in Lima time; a naive datetime is taken as UTC (what the stores write)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(LIMA)


def lima_today() -> date:
    return datetime.now(LIMA).date()


def fmt_date(day: date | datetime | None) -> str:
    """dd/mm/aaaa ("—" when unknown)."""
    if day is None:
        return "—"
    if isinstance(day, datetime):
        day = lima(day).date()
    return day.strftime("%d/%m/%Y")


def fmt_datetime(moment: datetime | None) -> str:
    """dd/mm/aaaa hh:mm in Lima time."""
    return lima(moment).strftime("%d/%m/%Y %H:%M") if moment else "—"


def fmt_short(moment: datetime | None) -> str:
    """dd/mm hh:mm in Lima time, for "el 04/12 10:32"."""
    return lima(moment).strftime("%d/%m %H:%M") if moment else "—"
