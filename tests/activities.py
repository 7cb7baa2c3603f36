"""Builders of Bot Framework activities shaped as Microsoft Teams sends them (personal chat), for tests and benches."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import Any

TENANT_ID = "5f3c1a2e-8d4b-4c7a-9e21-0b6d7f8a9c10"
BOT_APP_ID = "3b9e2f71-6c4d-4a8e-b1f0-2d7c5e9a8b41"
BOT = {"id": f"28:{BOT_APP_ID}", "name": "Claqueta"}
ANA = {"id": "29:1Xq7aNaToRrEs-personal-id", "aadObjectId": "8c1f2d3e-4b5a-4697-8e0f-1a2b3c4d5e6f",
       "name": "Ana Torres"}
CONVERSATION_ID = "a:1Zp9personal-chat-ana-claqueta"

_ids = itertools.count(1_712_000_000_000)


def _base(type_: str, *, service_url: str, user: dict | None = None, conversation_id: str = CONVERSATION_ID,
          **extra: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    activity = {
        "type": type_,
        "id": f"{next(_ids)}",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "localTimestamp": now.astimezone().isoformat(),
        "localTimezone": "America/Lima",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": dict(user or ANA),
        "conversation": {"conversationType": "personal", "tenantId": TENANT_ID, "id": conversation_id},
        "recipient": dict(BOT),
        "entities": [{"type": "clientInfo", "locale": "es-PE", "country": "PE", "platform": "Web",
                      "timezone": "America/Lima"}],
        "channelData": {"tenant": {"id": TENANT_ID}},
        "locale": "es-PE",
    }
    activity.update(extra)
    return activity


def message(text: str, *, service_url: str, user: dict | None = None, mention_bot: bool = False,
            **extra: Any) -> dict[str, Any]:
    """A chat message; with `mention_bot` the text starts with the <at> mention Teams adds in channels."""
    activity = _base("message", service_url=service_url, user=user, text=text, textFormat="plain", **extra)
    if mention_bot:
        mention = f"<at>{BOT['name']}</at>"
        activity["text"] = f"{mention} {text}"
        activity["entities"].append({"type": "mention", "text": mention, "mentioned": dict(BOT)})
    return activity


def submit(data: dict[str, Any], *, service_url: str, user: dict | None = None,
           reply_to_id: str = "1712000000000") -> dict[str, Any]:
    """An Action.Submit click: a message with no text whose value is the action data plus the inputs."""
    activity = _base("message", service_url=service_url, user=user, value=dict(data), replyToId=reply_to_id)
    activity["channelData"]["source"] = {"name": "message"}
    activity["channelData"]["legacy"] = {"replyToId": reply_to_id}
    return activity


def card_action(verb: str, data: dict[str, Any] | None = None, *, service_url: str, user: dict | None = None,
                reply_to_id: str = "1712000000000", trigger: str = "manual") -> dict[str, Any]:
    """An Action.Execute click (Universal Actions): invoke `adaptiveCard/action`."""
    activity = _base(
        "invoke", service_url=service_url, user=user, name="adaptiveCard/action", replyToId=reply_to_id,
        value={"action": {"type": "Action.Execute", "id": f"btn-{verb}", "verb": verb, "data": dict(data or {})},
               "trigger": trigger},
    )
    activity["channelData"]["source"] = {"name": "message"}
    activity["channelData"]["legacy"] = {"replyToId": reply_to_id}
    return activity


def invoke(name: str, value: Any = None, *, service_url: str, user: dict | None = None) -> dict[str, Any]:
    return _base("invoke", service_url=service_url, user=user, name=name, value=value)


def members_added(*, service_url: str, user: dict | None = None) -> dict[str, Any]:
    """The conversationUpdate of a personal install: both the bot and the person join."""
    person = dict(user or ANA)
    activity = _base("conversationUpdate", service_url=service_url, user=person,
                     membersAdded=[{"id": BOT["id"]}, {"id": person["id"], "aadObjectId": person["aadObjectId"]}])
    del activity["entities"]
    return activity


def installation_update(action: str = "add", *, service_url: str, user: dict | None = None) -> dict[str, Any]:
    activity = _base("installationUpdate", service_url=service_url, user=user, action=action)
    activity["channelData"]["source"] = {"name": "message"}
    del activity["entities"]
    return activity
