"""The Notifier port over Teams: turns a notify effect into the card or message a person receives."""

from __future__ import annotations

from typing import Any, Callable

from bot.proactive import ProactiveNotifier
from cards import builders as cards
from cards import reminders as reminder_cards
from cards.text import escape
from services.reminders import SNOOZE_TEMPLATE
from procedure.engine import open_actions
from procedure.model import Procedure
from services.ports import Directory, RequestStore, Unreachable
from services.requests import RequestService

TEXTS = {
    "hold": "La solicitud {number} «{title}» se puso en espera. Motivo: {reason}",
    "resume": "La solicitud {number} «{title}» se reanudó.",
    "cancel": "La solicitud {number} «{title}» fue cancelada. Motivo: {reason}",
    "observation": "Nueva observación en la solicitud {number} «{title}»: {text}",
    "milestone": "Solicitud {number} «{title}»: {text}",
    "brand_report": ("Reporte de línea gráfica de {by}: la pieza «{piece}» no cumple el Manual de Identidad "
                     "Institucional. Detalle: {detail}"),
    "unreachable": ("No pude avisar a {person_name} sobre la solicitud {number} ({step_id}): aún no ha "
                    "iniciado una conversación con el bot. Pídale que escriba «hola» al bot en Teams."),
}


class TeamsNotifier:
    def __init__(self, proc: Procedure, service: RequestService, store: RequestStore, directory: Directory,
                 proactive: Callable[[], ProactiveNotifier]):
        self.proc = proc
        self.service = service
        self.store = store
        self.directory = directory
        self._proactive = proactive

    async def notify(self, person_id: str, message: dict[str, Any]) -> dict:
        template = message.get("template")
        if template == SNOOZE_TEMPLATE:
            return {"skipped": "marca de posposición"}
        reference = await self.store.get_reference(person_id)
        if reference is None:
            raise Unreachable(person_id)
        proactive = self._proactive()
        if template == "digest":
            return {"activity_id": await proactive.send_card(reference, reminder_cards.digest_card(message))}
        if template == "brand_report":
            return {"activity_id": await proactive.send(reference, TEXTS["brand_report"].format(
                by=escape(message.get("by_name", "")), piece=escape(message.get("piece", "")),
                detail=escape(message.get("detail", ""))))}
        request = await self.store.get(message["number"])
        if template in reminder_cards.HEADLINES:
            if message.get("step_id") != request.step_id or not request.is_open:
                return {"skipped": "la solicitud ya avanzó"}
            card = reminder_cards.reminder_card(message, request.number, request.version)
            return {"activity_id": await proactive.send_card(reference, card)}
        if template == "step_opened" and message.get("step_id") != request.step_id:
            # The request moved on before this card went out: its current step already has its own card.
            return {"skipped": f"la solicitud ya no está en {message.get('step_id')}"}
        if template in ("step_opened", "filed"):
            person = await self.directory.person(person_id)
            if person is None:
                raise Unreachable(person_id)
            if template == "filed":
                card = cards.request_summary_card(self.proc, request, [message["warning"]] if message.get("warning")
                                                  else [])
            else:
                view = await self.service.view(request.number, person)
                history = await self.store.history(request.number)
                card = cards.step_card(self.proc, request, viewer_actions=open_actions(self.proc, request, person),
                                       people={}, can_act_user_ids=view.actor_ids, refreshed_for=person_id,
                                       notice=message.get("warning"), history_tail=history[-3:],
                                       today=self.service.clock.now().date())
            activity_id = await proactive.send_card(reference, card)
        else:
            # Teams renders message text as markdown: everything people typed is escaped.
            fields = {"number": request.number, "title": escape(request.title),
                      "reason": escape(message.get("reason", "")), "text": escape(message.get("text", "")),
                      "person_name": escape(message.get("person_name", "")), "step_id": message.get("step_id", "")}
            text = TEXTS.get(template, "Novedades en la solicitud {number} «{title}».").format(**fields)
            activity_id = await proactive.send(reference, text)
        return {"activity_id": activity_id}
