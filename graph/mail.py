"""Email through Microsoft Graph: users/{mailbox}/sendMail from the office's mailbox."""

from __future__ import annotations

from msgraph import GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.internet_message_header import InternetMessageHeader
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

from local.mailer import embed_actionable_card
from services.ports import Email

EFFECT_HEADER = "x-claqueta-effect"


class GraphMailer:
    """Mailer port on sendMail.

    Duplicates: sendMail has no idempotency key and answers 202 once the mail is queued. The
    dispatcher records the effect id as done only after that 202, so a retry after a timeout or a
    503/504 (the SDK's own retry included) can send the same mail at most once more, never in a loop.
    Each mail carries the effect id in the `x-claqueta-effect` header, so such a duplicate is
    recognisable in the mailbox (and by message trace).
    """

    def __init__(self, client: GraphServiceClient, mailbox: str, *, save_to_sent_items: bool = True) -> None:
        self.client = client
        self.mailbox = mailbox
        self.save_to_sent_items = save_to_sent_items

    async def send(self, email: Email) -> dict:
        if not email.to:
            raise ValueError("El correo no tiene destinatarios.")
        html = email.html if email.approval_card is None else embed_actionable_card(email.html, email.approval_card)
        message = Message(
            subject=email.subject,
            body=ItemBody(content_type=BodyType.Html, content=html),
            to_recipients=[_recipient(a) for a in email.to],
            cc_recipients=[_recipient(a) for a in email.cc] or None,
            internet_message_headers=[InternetMessageHeader(name=EFFECT_HEADER, value=email.idempotency_key)],
        )
        await self.client.users.by_user_id(self.mailbox).send_mail.post(
            SendMailPostRequestBody(message=message, save_to_sent_items=self.save_to_sent_items))
        return {"mailbox": self.mailbox, "effect": email.idempotency_key, "to": list(email.to)}


def _recipient(address: str) -> Recipient:
    return Recipient(email_address=EmailAddress(address=address))
