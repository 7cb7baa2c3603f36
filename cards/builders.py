"""Every card the bot sends, in one import: pure functions from the domain to Adaptive Card dicts."""

from cards.general import help_card, message_card, welcome_card
from cards.intake import intake_form_card, request_summary_card, third_party_form_card
from cards.lists import AgendaRow, agenda_card, history_card, request_list_card
from cards.step import AttachedFile, request_status_card, shared_file_card, step_card

__all__ = [
    "AgendaRow", "AttachedFile", "agenda_card", "shared_file_card", "help_card", "history_card", "intake_form_card", "message_card",
    "request_list_card", "request_status_card", "request_summary_card", "step_card", "third_party_form_card",
    "welcome_card",
]
