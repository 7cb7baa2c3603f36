"""The three invoke values an `adaptiveCard/action` answer can carry (Universal Actions contract)."""

from __future__ import annotations

from typing import Any

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
ERROR_TYPE = "application/vnd.microsoft.error"


def card_response(card: dict[str, Any]) -> dict[str, Any]:
    """Replace the clicked card with `card`."""
    return {"statusCode": 200, "type": CARD_TYPE, "value": card}


def message_response(text: str) -> dict[str, Any]:
    """Keep the card and show `text` to the person who clicked."""
    return {"statusCode": 200, "type": MESSAGE_TYPE, "value": text}


def error_response(status_code: int, code: str, message: str) -> dict[str, Any]:
    """Refuse the action; Teams shows `message` under the card."""
    if not 400 <= status_code <= 599:
        raise ValueError(f"an error invoke needs a 4xx/5xx statusCode, got {status_code}")
    return {"statusCode": status_code, "type": ERROR_TYPE, "value": {"code": code, "message": message}}


def is_invoke_value(value: Any) -> bool:
    """True when `value` has the {statusCode, type, value} shape Teams expects."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("statusCode"), int)
        and value.get("type") in (CARD_TYPE, MESSAGE_TYPE, ERROR_TYPE)
        and "value" in value
    )
