"""Every card the bot sends, in one import: pure functions from the domain to Adaptive Card dicts."""

from cards.general import help_card, message_card, welcome_card
from cards.intake import intake_form_card, request_summary_card
from cards.lists import AgendaRow, agenda_card, history_card, request_list_card
from cards.step import request_status_card, step_card

__all__ = [
    "AgendaRow", "agenda_card", "help_card", "history_card", "intake_form_card", "message_card",
    "request_list_card", "request_status_card", "request_summary_card", "step_card", "welcome_card",
]
