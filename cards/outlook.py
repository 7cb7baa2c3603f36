"""Request cards as Outlook actionable messages take them: the Teams card with `originator`, for emails and their invokes.

Outlook renders Universal Actions (``Action.Execute``, ``refresh``) from Adaptive Card 1.4 on, only when the
card's ``originator`` is the provider id registered in the Actionable Email Developer Dashboard; it ignores
``refresh.userIds`` and always asks the bot for the current card when the email is opened; it shows no
``Action.Submit`` (so the Teams fallbacks are dropped). ``originator`` and ``hideOriginalBody`` are Outlook
extensions, outside the official Adaptive Card schema.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from cards.step import step_card
from cards.verbs import Verb
from procedure.engine import Person, open_actions
from procedure.model import Procedure
from procedure.request import HistoryEntry, Request

OUTLOOK_CARD_VERSION = "1.4"
# Root properties only Outlook knows (the official schema refuses them): strip them before validating.
OUTLOOK_ONLY_PROPERTIES = ("originator", "hideOriginalBody")
# Buttons that would leave the email showing a card with no way back to the request (no refresh of its own).
_NOT_IN_OUTLOOK = {Verb.REQUEST_HISTORY.value}


def for_outlook(card: dict[str, Any], originator: str) -> dict[str, Any]:
    """The same card for Outlook: `originator`, version 1.4, no Action.Submit, no history button, body hidden.

    The email's HTML body says the same as the card; Outlook shows the card alone, and a client that cannot
    render actionable messages shows the body.
    """
    result = _clean(copy.deepcopy(card))
    result["version"] = OUTLOOK_CARD_VERSION
    if originator:
        result["originator"] = originator
    result["hideOriginalBody"] = True
    return result


def outlook_approval_card(proc: Procedure, request: Request, director: Person, originator: str,
                          history_tail: Sequence[HistoryEntry] = ()) -> dict[str, Any]:
    """The card the email to the area's director carries: the director's own Teams card, for Outlook.

    refresh.userIds names the director as in Teams; Outlook ignores it and refreshes on every opening, which
    is what keeps the email showing the decision when it was taken in Teams.
    """
    card = step_card(proc, request, viewer_actions=open_actions(proc, request, director),
                     can_act_user_ids=[director.id], refreshed_for=director.id, history_tail=history_tail)
    return for_outlook(card, originator)


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        kept = [_clean(item) for item in node if not _dropped(item)]
        return [item for item in kept if not _empty_action_set(item)]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "Action.Execute" and isinstance(node.get("fallback"), dict):
        del node["fallback"]  # an Action.Submit, which Outlook never shows
    if node.get("type") == "TextBlock" and node.get("style") == "heading":
        del node["style"]  # 1.5; the heading keeps its size and weight
    if node.get("type") == "AdaptiveCard" and "version" in node:
        node["version"] = OUTLOOK_CARD_VERSION
    return {key: _clean(value) for key, value in node.items()}


def _dropped(item: Any) -> bool:
    return isinstance(item, dict) and (item.get("type") == "Action.Submit" or (
        item.get("type") == "Action.Execute" and item.get("verb") in _NOT_IN_OUTLOOK))


def _empty_action_set(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "ActionSet" and not item.get("actions")
