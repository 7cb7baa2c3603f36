"""Base turn handler: routes text, card clicks (Action.Execute and Action.Submit) and invokes to overridable hooks."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import ActivityHandler, CardFactory, InvokeResponse, MessageFactory, TurnContext

from bot import invoke

log = logging.getLogger(__name__)

ADAPTIVE_CARD_ACTION = "adaptiveCard/action"

_FAILED_ACTION = invoke.error_response(
    500, "accion_fallida", "No se pudo completar la acción. Inténtalo de nuevo en unos minutos."
)
_INCOMPLETE_ACTION = invoke.error_response(
    400, "accion_incompleta", "La acción de la tarjeta llegó incompleta. Vuelve a abrir la tarjeta e inténtalo otra vez."
)


class ClaquetaActivityHandler(ActivityHandler):
    """Subclass and override `on_text_message` and `on_card_action` (and, if needed, the ActivityHandler
    hooks such as `on_members_added_activity` / `on_installation_update_add`).

    botbuilder 4.17.1 serialises an invoke body twice under CloudAdapter (HTTP 500 for every card
    click), so `adaptiveCard/action` never goes through `on_adaptive_card_invoke`: this class builds the
    `InvokeResponse` itself and the server writes its dict body once.
    """

    # ── hooks for the business handler ──

    async def on_text_message(self, turn_context: TurnContext, text: str) -> None:
        """A person wrote `text` (bot @mention removed, stripped)."""

    async def on_card_action(self, turn_context: TurnContext, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        """A card button was pressed. Return `bot.invoke.card_response / message_response / error_response`."""
        return invoke.error_response(501, "accion_desconocida", "Esta acción ya no está disponible.")

    async def on_other_invoke(self, turn_context: TurnContext) -> InvokeResponse:
        """Invokes other than adaptiveCard/action: answered 200 with no body so Teams never shows a failure."""
        return InvokeResponse(status=200)

    # ── routing ──

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict) and not (activity.text or "").strip():
            # Action.Submit (the fallback of Action.Execute) arrives as a message carrying the card data.
            value = activity.value
            verb = value.get("verb") or value.get("action")
            result = await self._run_card_action(turn_context, verb if isinstance(verb, str) else "", value)
            await self._reply_with(turn_context, result)
            return
        text = TurnContext.remove_recipient_mention(activity) or activity.text or ""
        await self.on_text_message(turn_context, text.strip())

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name != ADAPTIVE_CARD_ACTION:
            return await self.on_other_invoke(turn_context)
        parsed = _parse_execute(activity.value)
        if parsed is None:
            log.warning("adaptiveCard/action without a verb (activity %s)", activity.id)
            return InvokeResponse(status=200, body=_INCOMPLETE_ACTION)
        verb, data = parsed
        return InvokeResponse(status=200, body=await self._run_card_action(turn_context, verb, data))

    async def _run_card_action(self, turn_context: TurnContext, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await self.on_card_action(turn_context, verb, data)
        except Exception:
            # The click must still get an answer the card can show; the traceback goes to the log.
            log.exception("card action %r failed", verb)
            return _FAILED_ACTION
        if not invoke.is_invoke_value(result):
            log.error("card action %r returned %r, not an invoke value", verb, type(result).__name__)
            return _FAILED_ACTION
        return result

    @staticmethod
    async def _reply_with(turn_context: TurnContext, result: dict[str, Any]) -> None:
        kind, value = result["type"], result["value"]
        if kind == invoke.CARD_TYPE:
            await turn_context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(value)))
        elif kind == invoke.MESSAGE_TYPE:
            await turn_context.send_activity(MessageFactory.text(str(value)))
        else:
            await turn_context.send_activity(MessageFactory.text(str(value.get("message", ""))))


def _parse_execute(value: Any) -> tuple[str, dict[str, Any]] | None:
    """(verb, data) of an Action.Execute invoke value, or None when it is malformed."""
    if not isinstance(value, dict):
        return None
    action = value.get("action")
    if not isinstance(action, dict):
        return None
    verb = action.get("verb")
    if not isinstance(verb, str) or not verb:
        return None
    data = action.get("data")
    return verb, data if isinstance(data, dict) else {}
