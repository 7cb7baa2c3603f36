"""Email on the embedded default: each message written as an .eml file, once per idempotency key."""

from __future__ import annotations

import hashlib
import json
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

from local.clock import SystemClock
from local.files import key_filename, write_atomically
from services.ports import Clock, Email

DEFAULT_SENDER = "OCOIM — PROINVERSIÓN <ocoim@proinversion.example>"


class EmlMailer:
    """Writes what would be sent, so it can be opened in any mail client; the same key never writes twice."""

    def __init__(self, folder: str | Path, sender: str = DEFAULT_SENDER, *, clock: Clock | None = None) -> None:
        self.folder = Path(folder)
        self.sender = sender
        self.clock = clock or SystemClock()

    async def send(self, email: Email) -> dict:
        path = self.folder / key_filename(email.idempotency_key, ".eml")
        message_id = message_id_for(email.idempotency_key)
        if path.exists():  # already sent: the first result stands
            return {"id": _stored_message_id(path) or message_id, "path": str(path), "duplicate": True}
        if not email.to:
            raise ValueError("El correo no tiene destinatarios.")
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = self.sender
        message["To"] = ", ".join(email.to)
        if email.cc:
            message["Cc"] = ", ".join(email.cc)
        message["Subject"] = email.subject
        message["Date"] = format_datetime(self.clock.now())
        message["Message-ID"] = message_id
        message["X-Claqueta-Key"] = email.idempotency_key
        html = email.html if email.approval_card is None else embed_actionable_card(email.html, email.approval_card)
        message.set_content(html, subtype="html", charset="utf-8")
        write_atomically(path, bytes(message))
        return {"id": message_id, "path": str(path)}


def message_id_for(key: str) -> str:
    """A Message-ID derived from the idempotency key: a resend of the same email carries the same id."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@claqueta.local>"


def embed_actionable_card(html: str, card: dict) -> str:
    """Put the card where Outlook looks for an actionable message: a script block in the HTML head."""
    # "<", ">" and "&" escaped as JSON unicode escapes, so no text in the card can close the script element.
    payload = (json.dumps(card, ensure_ascii=False)
               .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    script = f'<script type="application/adaptivecard+json">{payload}</script>'
    head = re.search(r"<head(\s[^>]*)?>", html, re.IGNORECASE)
    if head:
        return html[:head.end()] + script + html[head.end():]
    root = re.search(r"<html(\s[^>]*)?>", html, re.IGNORECASE)
    if root:
        return html[:root.end()] + f"<head>{script}</head>" + html[root.end():]
    return f"<html><head>{script}</head><body>{html}</body></html>"


def _stored_message_id(path: Path) -> str | None:
    with path.open("rb") as fh:
        return BytesParser(policy=policy.default).parse(fh, headersonly=True)["Message-ID"]
