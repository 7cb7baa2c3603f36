"""The Teams conversation: text commands, the request form, and one registry of card verbs over the services."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity

from bot import forms, invoke
from bot.activity_handler import ClaquetaActivityHandler
from bot.proactive import ProactiveNotifier
from cards import builders as cards
from cards import reminders as reminder_cards
from cards.outlook import for_outlook
from cards.text import escape
from cards.verbs import CardData, Inputs, Verb
from config.deadlines import Deadlines
from procedure.request import Effect, EffectKind
from services import agenda
from services.reminders import ReminderJob
from procedure.engine import LINK_DELIVERABLES, Action, ActionRefused, Command, IntakeError, Person, StaleVersion
from procedure.model import Deliverable, Procedure
from procedure.request import Request
from procedure.roles import Role
from services.ports import Calendar, Directory, NotFound, RequestQuery, RequestStore
from services.requests import NoAccess, RequestService

log = logging.getLogger(__name__)

NUMBER_RE = r"(\d{4}-\d{4}|\d{1,4})"
OUTLOOK_CHANNEL = "outlook"  # channelId of Action.Execute invokes from actionable emails (Outlook channel)
Handler = Callable[["ClaquetaBot", TurnContext, Person, dict], Awaitable[dict]]


@dataclass(frozen=True)
class TextCommand:
    pattern: re.Pattern
    method: str


def _cmd(pattern: str, method: str) -> TextCommand:
    return TextCommand(re.compile(pattern, re.IGNORECASE), method)


TEXT_COMMANDS = [
    _cmd(r"^(ayuda|help|\?|comandos|men[uú])$", "cmd_help"),
    _cmd(r"^(nueva solicitud|nuevo video|solicitar( un)? video|quiero (un|una) (video|pieza)\b.*|necesito (un|una) "
         r"(video|pieza)\b.*|pedir( un)? video|crear solicitud)$", "cmd_new_request"),
    _cmd(r"^((remitir|revisar|enviar) (una )?)?pieza(s)? (de|elaborada(s)? por) terceros\b.*$", "cmd_third_party"),
    _cmd(r"^mis solicitudes$", "cmd_my_requests"),
    _cmd(r"^mis pendientes$|^pendientes$", "cmd_my_pending"),
    _cmd(rf"^estado\s+(?:n[°º.]?\s*)?{NUMBER_RE}$", "cmd_status"),
    _cmd(rf"^historial\s+(?:n[°º.]?\s*)?{NUMBER_RE}$", "cmd_history"),
    _cmd(r"^agenda\b(.*)$", "cmd_agenda"),
    _cmd(r"^(exportar|excel|cuadro de seguimiento)\b.*$", "cmd_export"),
    _cmd(r"^(reportar|reporte)( de)? (l[ií]nea gr[aá]fica|marca|manual de identidad)\b.*$", "cmd_brand_report"),
    _cmd(r"^rol\s+(\S+)(?:\s+(\S+))?$", "cmd_take_role"),
    _cmd(r"^(hola|buen[oa]s?( d[ií]as| tardes| noches)?|saludos)\W*$", "cmd_hello"),
]

ROLE_WORDS = {
    "coordinador": Role.COORDINATOR, "coordinadora": Role.COORDINATOR, "prensa": Role.PRESS,
    "periodista": Role.PRESS, "comunicacion": Role.COMMS, "comunicación": Role.COMMS, "publicidad": Role.COMMS,
    "disenador": Role.DESIGNER, "diseñador": Role.DESIGNER, "disenadora": Role.DESIGNER, "diseñadora": Role.DESIGNER,
    "jefe": Role.OCOIM_HEAD, "jefa": Role.OCOIM_HEAD, "analista": Role.ADMIN_ANALYST, "director": Role.DIRECTOR,
    "directora": Role.DIRECTOR, "solicitante": Role.REQUESTER,
}


class VerbRegistry:
    """One place that maps every card verb to its handler (the verbs themselves live in cards.verbs)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def __call__(self, *verbs: Verb):
        def register(fn: Handler) -> Handler:
            for verb in verbs:
                self.handlers[verb.value] = fn
            return fn

        return register


verb = VerbRegistry()


class ClaquetaBot(ClaquetaActivityHandler):
    def __init__(self, proc: Procedure, service: RequestService, store: RequestStore, directory: Directory, *,
                 is_local: bool, on_transition: Callable[[], None] = lambda: None, calendar: Calendar | None = None,
                 reminders: ReminderJob | None = None, deadlines: Deadlines | None = None,
                 publish_export: Callable[[str, bytes], Awaitable[str]] | None = None,
                 outlook_originator: str = ""):
        super().__init__()
        self.calendar = calendar
        self.reminders = reminders
        self.deadlines = deadlines or Deadlines()
        self.publish_export = publish_export
        self.outlook_originator = outlook_originator
        self.period_indicators = agenda.PeriodIndicators(proc)  # the agenda's, kept between looks
        self.proc = proc
        self.service = service
        self.store = store
        self.directory = directory
        self.is_local = is_local
        self.on_transition = on_transition
        self._known_references: set[tuple[str, str]] = set()

    # ── Who is talking ──────────────────────────────────────────────────────────────────────

    async def person_of(self, turn_context: TurnContext) -> Person:
        sender = turn_context.activity.from_property
        person_id = sender.aad_object_id or sender.id
        person = await self.directory.person(person_id)
        if person is None and hasattr(self.directory, "ensure_person"):
            person = await self.directory.ensure_person(person_id, sender.name or "Usuario")
        return person or Person(person_id, sender.name or "Usuario", frozenset({Role.REQUESTER}))

    async def remember(self, turn_context: TurnContext, person: Person) -> bool:
        """Store where to reach this person; True the first time the bot hears from them."""
        activity = turn_context.activity
        if activity.channel_id == OUTLOOK_CHANNEL:
            return False  # a click in an email: the person's Teams chat stays where proactive messages go
        key = (person.id, activity.conversation.id if activity.conversation else "")
        if key in self._known_references:
            return False
        existing = await self.store.get_reference(person.id)
        reference = ProactiveNotifier.reference_of(activity)
        first = existing is None
        if existing is None or existing.get("conversation", {}).get("id") != key[1] \
                or existing.get("serviceUrl") != reference.get("serviceUrl"):
            if activity.conversation is None or activity.conversation.conversation_type in (None, "personal"):
                await self.store.save_reference(person.id, reference)
        self._known_references.add(key)
        return first

    # ── Conversation ────────────────────────────────────────────────────────────────────────

    async def on_members_added_activity(self, members_added, turn_context: TurnContext) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if not any(m.id == bot_id for m in members_added) and not any(
                m.id != bot_id for m in members_added):
            return
        person = await self.person_of(turn_context)
        if await self.remember(turn_context, person):
            await self._send_card(turn_context, cards.welcome_card(self.is_local))

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        person = await self.person_of(turn_context)
        if await self.remember(turn_context, person):
            await self._send_card(turn_context, cards.welcome_card(self.is_local))

    async def on_text_message(self, turn_context: TurnContext, text: str) -> None:
        person = await self.person_of(turn_context)
        first = await self.remember(turn_context, person)
        files = shared_files(turn_context.activity)
        if files:
            for file in files[:3]:
                await self._offer_file(turn_context, person, file)
            return
        clean = " ".join(text.split()).strip()
        for command in TEXT_COMMANDS:
            match = command.pattern.match(clean)
            if match and (command.method != "cmd_take_role" or self.is_local):
                if first and command.method in ("cmd_hello", "cmd_help"):
                    break
                await getattr(self, command.method)(turn_context, person, match)
                return
        if first:
            await self._send_card(turn_context, cards.welcome_card(self.is_local))
            return
        await turn_context.send_activity(MessageFactory.text(
            "No entendí ese mensaje. Escriba **nueva solicitud** para pedir una pieza audiovisual, "
            "**mis pendientes** para ver lo que le toca, o **ayuda** para ver todos los comandos."
        ))

    async def _offer_file(self, tc: TurnContext, person: Person, file: cards.AttachedFile) -> None:
        """A file shared in the chat: offer it to each pending step that asks for a file or link."""
        choices = []
        for request in await self.service.pending_for(person):
            step = self.proc[request.step_id]
            for kind in step.deliverables:
                if kind in LINK_DELIVERABLES:
                    card = CardData(number=request.number, version=request.version, step=step.id)
                    choices.append((f"{step.id} · {kind.label} (N° {request.number})", card, kind.value))
        if not choices:
            await tc.send_activity(MessageFactory.text(
                f"Recibí «{escape(file.name)}», pero no tiene actividades pendientes que pidan un archivo. "
                "Escriba «mis pendientes» para ver lo que le toca."))
            return
        await self._send_card(tc, cards.shared_file_card(file.name, choices, file))

    async def cmd_hello(self, tc: TurnContext, person: Person, match) -> None:
        # They have seen the welcome card already (a first message gets it): a short greeting is enough.
        first_name = escape(person.name.split()[0]) if person.name else ""
        await tc.send_activity(MessageFactory.text(
            f"¡Hola{', ' + first_name if first_name else ''}! Escriba «nueva solicitud» para pedir una pieza "
            "audiovisual, «mis pendientes» para ver lo que le toca o «ayuda» para ver todos los comandos."))

    async def cmd_help(self, tc: TurnContext, person: Person, match) -> None:
        await self._send_card(tc, cards.help_card(Role.COORDINATOR in person.roles, self.is_local))

    async def cmd_new_request(self, tc: TurnContext, person: Person, match) -> None:
        areas = await self.directory.areas()
        values = {"area": person.area} if person.area in areas and person.area != "OCOIM" else {}
        await self._send_card(tc, cards.intake_form_card(areas, values, None))

    async def cmd_third_party(self, tc: TurnContext, person: Person, match) -> None:
        areas = await self.directory.areas()
        values = {"area": person.area} if person.area in areas and person.area != "OCOIM" else {}
        await self._send_card(tc, cards.third_party_form_card(areas, values, None))

    async def cmd_my_requests(self, tc: TurnContext, person: Person, match) -> None:
        requests = await self.service.mine(person)
        await self._send_card(tc, cards.request_list_card(
            "Mis solicitudes", requests, self.proc,
            "Aún no tiene solicitudes. Escriba «nueva solicitud» para pedir una pieza audiovisual."))

    async def cmd_my_pending(self, tc: TurnContext, person: Person, match) -> None:
        requests = await self.service.pending_for(person)
        await self._send_card(tc, cards.request_list_card(
            "Mis pendientes", requests, self.proc, "No tiene actividades pendientes. ¡Todo al día!"))

    async def cmd_status(self, tc: TurnContext, person: Person, match) -> None:
        number = await self._number(match.group(1))
        await self._send_card(tc, await self._guarded(person, number, self._request_card))

    async def cmd_history(self, tc: TurnContext, person: Person, match) -> None:
        number = await self._number(match.group(1))

        async def build(p: Person, n: str) -> dict:
            request = await self.service.get(n)
            return cards.history_card(request, await self.service.history(n, p))

        await self._send_card(tc, await self._guarded(person, number, build))

    async def cmd_agenda(self, tc: TurnContext, person: Person, match) -> None:
        if not person.is_ocoim:
            await tc.send_activity(MessageFactory.text("La agenda es para el equipo de OCOIM. "
                                                       "Escriba «mis solicitudes» para ver las suyas."))
            return
        await self._send_card(tc, await self.agenda(person, {}))

    async def cmd_export(self, tc: TurnContext, person: Person, match) -> None:
        await tc.send_activity(MessageFactory.text(await self.export(person)))

    async def cmd_brand_report(self, tc: TurnContext, person: Person, match) -> None:
        if not person.is_ocoim:
            await tc.send_activity(MessageFactory.text("Los reportes de línea gráfica son del equipo de OCOIM."))
            return
        await self._send_card(tc, reminder_cards.brand_report_form())

    async def agenda(self, person: Person, selected: dict[str, str]) -> dict:
        """The coordinator's agenda: open requests by phase, filterable, with this quarter's indicators."""
        today = self.service.clock.now().date()
        requests = await self.store.find(RequestQuery(open_only=True, brief=True, limit=100_000))
        names = await agenda.load_names(self.directory)
        groups = agenda.agenda_rows(self.proc, requests, today, self.deadlines, names=names,
                                    area=selected.get(Inputs.FILTER_AREA) or None,
                                    piece_type=selected.get(Inputs.FILTER_TYPE) or None,
                                    owner=selected.get(Inputs.FILTER_OWNER) or None)
        versions = {r.number: r.version for r in requests}
        rows = {phase.label: [cards.AgendaRow(number=row.number, version=versions[row.number], title=row.title,
                                              step_id=row.step_id, step_name=row.step_name, owner=row.owner,
                                              deadline=row.deadline, status=row.status,
                                              overdue=row.days_overdue > 0) for row in phase_rows]
                for phase, phase_rows in groups.items()}
        # Indicators cover the last 90 days, delivered requests included.
        start = today - timedelta(days=90)
        indicators = await self.period_indicators.indicators(self.store, requests, start, today, today,
                                                             self.deadlines)
        owners = {**names.people, **{role.value: role.label for role in Role if role not in (
            Role.REQUESTER, Role.OCOIM_TEAM)}}
        return cards.agenda_card(rows, areas=await self.directory.areas(), owners=owners, selected=selected,
                                 indicators=agenda.indicator_rows(self.proc, indicators) if indicators else
                                 [("Indicadores", "En cálculo: vuelva a abrir la agenda en unos minutos.")])

    async def export(self, person: Person) -> str:
        if not person.is_ocoim:
            return "La exportación del cuadro de seguimiento es para el equipo de OCOIM."
        if self.publish_export is None:
            return "La exportación no está disponible en esta instalación."
        today = self.service.clock.now().date()
        # Brief requests (the table reads no deliverables) and history digests shared with the agenda.
        requests = await self.store.find(RequestQuery(brief=True, limit=100_000))
        digests = await self.period_indicators.digests.digests(self.store, requests)
        content = agenda.export_tracking_xlsx(self.proc, requests, {}, today, self.deadlines,
                                              names=await agenda.load_names(self.directory), digests=digests)
        url = await self.publish_export(f"seguimiento-{today.isoformat()}.xlsx", content)
        return (f"Cuadro de seguimiento al {today.strftime('%d/%m/%Y')} ({len(requests)} solicitudes): "
                f"[descargar el Excel]({url})")

    async def cmd_take_role(self, tc: TurnContext, person: Person, match) -> None:
        """Local mode only: one person plays any role, to try the whole procedure from one chat."""
        word, area = match.group(1).lower(), (match.group(2) or "").upper()
        role = ROLE_WORDS.get(word) or (Role[word.upper()] if word.upper() in Role.__members__ else None)
        if role is None:
            await tc.send_activity(MessageFactory.text(
                "Rol desconocido. Use: coordinador, prensa, comunicacion, diseñador, jefe, analista, "
                "director <ÁREA> o solicitante <ÁREA>."))
            return
        areas = await self.directory.areas()
        if role in (Role.DIRECTOR, Role.REQUESTER) and area not in areas:
            await tc.send_activity(MessageFactory.text(
                f"Indique el área: {', '.join(sorted(areas))}. Por ejemplo: «rol {word} DE»."))
            return
        await self.directory.grant_role(person.id, role.value, area or None)
        where = f" del área {area}" if area else ""
        await tc.send_activity(MessageFactory.text(
            f"Modo local: ahora también tiene el rol {role.label}{where}. Escriba «mis pendientes»."))

    # ── Card verbs ──────────────────────────────────────────────────────────────────────────

    async def on_card_action(self, turn_context: TurnContext, verb_name: str, data: dict[str, Any]) -> dict:
        person = await self.person_of(turn_context)
        await self.remember(turn_context, person)
        handler = verb.handlers.get(verb_name)
        if handler is None:
            return invoke.error_response(400, "accion_desconocida",
                                         "Esta acción no existe o ya no está disponible.")
        try:
            result = await handler(self, turn_context, person, data)
        except NotFound:
            return invoke.error_response(404, "solicitud_inexistente", "No existe esa solicitud.")
        except forms.FormError as exc:
            return invoke.error_response(400, "datos_invalidos", exc.message)
        if (turn_context.activity.channel_id == OUTLOOK_CHANNEL and invoke.is_invoke_value(result)
                and result["type"] == invoke.CARD_TYPE):
            # The answer replaces the card in the email: Outlook shows it only with the originator.
            result = invoke.card_response(for_outlook(result["value"], self.outlook_originator))
        return result

    async def _act(self, person: Person, data: dict, build: Callable[[Request], Command]) -> dict:
        card_data = forms.card_data(data)
        try:
            outcome = await self.service.act(card_data.number, build, person, must_see=True)
        except NoAccess as exc:
            return invoke.error_response(403, "sin_acceso", exc.message)
        except StaleVersion:
            return invoke.card_response(await self._current_card(person, card_data.number, stale=True))
        except ActionRefused as exc:
            return invoke.card_response(await self._current_card(person, card_data.number, notice=exc.message,
                                                                 keep=data))
        self.on_transition()
        # The answer is built from what was just saved: no second read of the request or its history.
        view = await self.service.view_of(outcome.request, person)
        return invoke.card_response(await self._card(person, view, outcome.history,
                                                     " ".join(outcome.warnings) or None))

    async def _current_card(self, person: Person, number: str, *, stale: bool = False, notice: str | None = None,
                            done: str | None = None, keep: dict | None = None) -> dict:
        view = await self.service.view(number, person)
        history = await self.store.history(number)
        if stale and history:
            last = history[-1]
            notice = (f"Esta tarjeta estaba desactualizada: {last.summary.rstrip('.')} "
                      f"el {last.at.strftime('%d/%m/%Y a las %H:%M')}.")
        return await self._card(person, view, history[-3:], notice or done)

    async def _card(self, person: Person, view, history_tail, notice: str | None) -> dict:
        return cards.step_card(self.proc, view.request, viewer_actions=view.actions,
                               people=await self._names_for(view.request), can_act_user_ids=view.actor_ids,
                               refreshed_for=person.id, notice=notice, history_tail=history_tail,
                               today=self.service.clock.now().date())

    async def _names_for(self, request: Request) -> dict[str, str]:
        from procedure.engine import responsible_role

        role = responsible_role(self.proc, request)
        if role is None or role in (Role.DIRECTOR.value, Role.OCOIM_TEAM.value):
            return {}
        return {p.id: p.name for p in await self.directory.people_with_role(role)}

    async def _request_card(self, person: Person, number: str) -> dict:
        return await self._current_card(person, number)

    async def _guarded(self, person: Person, number: str | None, build) -> dict:
        if number is None:
            return cards.message_card("No encontré esa solicitud. Revise el número (por ejemplo: estado 2026-0001).",
                                      "attention")
        try:
            return await build(person, number)
        except NotFound:
            return cards.message_card(f"No existe la solicitud {number}.", "attention")
        except NoAccess:
            return cards.message_card(f"No participa en la solicitud {number}.", "attention")

    async def _number(self, text: str) -> str | None:
        if "-" in text:
            return text
        # "estado 7" means this year's request 7.
        now = self.service.clock.now()
        return f"{now.year}-{int(text):04d}"

    async def _send_card(self, turn_context: TurnContext, card: dict) -> None:
        await turn_context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))


# ── The verbs ────────────────────────────────────────────────────────────────────────────────


async def _file_request(bot: ClaquetaBot, person: Person, data: dict, start: str | None, form) -> dict:
    """File a request from its form; the same form comes back with Spanish errors next to its fields."""
    areas = await bot.directory.areas()
    try:
        outcome = await bot.service.file(forms.parse_intake(data), person, start=start)
    except (IntakeError, forms.FormError) as exc:
        errors = exc.errors if isinstance(exc, IntakeError) else {"form": exc.message}
        return invoke.card_response(form(areas, forms.intake_values(data), errors))
    bot.on_transition()
    return invoke.card_response(cards.request_summary_card(bot.proc, outcome.request, outcome.warnings))


@verb(Verb.INTAKE_SUBMIT)
async def _intake_submit(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    return await _file_request(bot, person, data, None, cards.intake_form_card)


@verb(Verb.THIRD_PARTY_SUBMIT)
async def _third_party_submit(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    return await _file_request(bot, person, data, "TER-01", cards.third_party_form_card)


@verb(Verb.FILE_ATTACH)
async def _file_attach(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    """Open the step's card with the shared file in place; completing it records the upload."""
    card_data = forms.card_data(data)
    file = cards.AttachedFile(name=str(data.get("name", ""))[:200], url=str(data.get("url", ""))[:2000],
                              source=str(data.get("source", ""))[:2000])
    kind = str(data.get("kind", ""))
    try:
        view = await bot.service.view(card_data.number, person)
    except NoAccess as exc:
        return invoke.error_response(403, "sin_acceso", exc.message)
    if view.request.version != card_data.version or Action.COMPLETE not in view.actions:
        return invoke.card_response(await bot._current_card(person, card_data.number, stale=True))
    history = await bot.store.history(card_data.number)
    return invoke.card_response(cards.step_card(
        bot.proc, view.request, viewer_actions=view.actions, people=await bot._names_for(view.request),
        can_act_user_ids=view.actor_ids, refreshed_for=person.id, history_tail=history[-3:],
        today=bot.service.clock.now().date(), attached={kind: file},
        notice=f"Revise y complete {view.request.step_id}: «{file.name}» se adjunta como {kind_label(kind)}."))


@verb(Verb.STEP_COMPLETE)
async def _complete(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    return await bot._act(person, data, lambda r: forms.complete_command(bot.proc, r, data))


# Verbs that are one engine action with an observation or a reason from the card.
SIMPLE_VERBS = {
    Verb.REVIEW_APPROVE: Action.APPROVE,
    Verb.REVIEW_CHANGES: Action.REQUEST_CHANGES,
    Verb.REVIEW_OBSERVE: Action.OBSERVE,
    Verb.REQUEST_HOLD: Action.HOLD,
    Verb.REQUEST_RESUME: Action.RESUME,
    Verb.REQUEST_CANCEL: Action.CANCEL,
}


def _simple_verb(action: Action) -> Handler:
    async def handler(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
        return await bot._act(person, data, lambda r: forms.simple_command(action, r, data))

    return handler


for _verb, _action in SIMPLE_VERBS.items():
    verb(_verb)(_simple_verb(_action))


@verb(Verb.REQUEST_REASSIGN)
async def _reassign(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    target_id = forms.reassign_target(data)
    target = await bot.directory.person(target_id) if target_id else None
    if target is None:
        return invoke.error_response(400, "persona_inexistente", "Elija a una persona de la lista.")
    return await bot._act(person, data, lambda r: forms.simple_command(Action.REASSIGN, r, data, assignee=target))


@verb(Verb.REQUEST_REFRESH, Verb.REQUEST_SHOW)
async def _show(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    card_data = forms.card_data(data)
    try:
        return invoke.card_response(await bot._current_card(person, card_data.number))
    except NoAccess as exc:
        return invoke.error_response(403, "sin_acceso", exc.message)


@verb(Verb.REQUEST_HISTORY)
async def _history(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    card_data = forms.card_data(data)
    try:
        entries = await bot.service.history(card_data.number, person)
    except NoAccess as exc:
        return invoke.error_response(403, "sin_acceso", exc.message)
    return invoke.card_response(cards.history_card(await bot.service.get(card_data.number), entries))


@verb(Verb.REQUEST_EDIT)
async def _edit(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    return await bot._act(person, data, lambda r: forms.edit_command(r, data))


@verb(Verb.MEETING_SLOTS)
async def _slots(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    """Free slots of the review's attendees on the chosen day (or the next working day), as a notice."""
    card_data = forms.card_data(data)
    day = forms.meeting_day(data) or bot.service.clock.now().date()
    minutes = forms.meeting_minutes(data)
    request = await bot.service.get(card_data.number)
    attendees = tuple(p.email for p in await bot.directory.people_with_role(Role.COORDINATOR.value) if p.email)
    slots = await bot.calendar.free_slots(attendees, day, minutes) if bot.calendar else []
    if slots:
        notice = "Horarios libres: " + ", ".join(s.strftime("%d/%m %H:%M") for s in slots) + "."
    else:
        notice = f"No hay horarios libres el {day.strftime('%d/%m/%Y')}; pruebe otra fecha."
    return invoke.card_response(await bot._current_card(person, request.number, notice=notice))


@verb(Verb.AGENDA_FILTER)
async def _agenda_filter(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    if not person.is_ocoim:
        return invoke.error_response(403, "sin_acceso", "La agenda es para el equipo de OCOIM.")
    selected = {k: Inputs.get(data, k) for k in (Inputs.FILTER_AREA, Inputs.FILTER_TYPE, Inputs.FILTER_OWNER)}
    return invoke.card_response(await bot.agenda(person, selected))


@verb(Verb.AGENDA_EXPORT)
async def _agenda_export(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    return invoke.message_response(await bot.export(person))


@verb(Verb.REMINDER_SNOOZE)
async def _snooze(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    card_data = forms.card_data(data)
    if bot.reminders is None:
        return invoke.error_response(400, "sin_recordatorios", "Los recordatorios no están activos.")
    try:
        days = await bot.reminders.snooze(card_data.number, card_data.step or "", person.id)
    except ActionRefused as exc:
        return invoke.error_response(403, "no_permitido", exc.message)
    until = max(days).strftime("%d/%m/%Y") if days else "mañana"
    return invoke.message_response(f"Listo: no recibirá recordatorios de {card_data.step} hasta después del {until}.")


@verb(Verb.BRAND_REPORT)
async def _brand_report(bot: ClaquetaBot, tc: TurnContext, person: Person, data: dict) -> dict:
    if not person.is_ocoim:
        return invoke.error_response(403, "sin_acceso", "Los reportes de línea gráfica son del equipo de OCOIM.")
    piece, detail = Inputs.get(data, Inputs.BRAND_PIECE)[:500], Inputs.get(data, Inputs.BRAND_DETAIL)[:2000]
    if not piece or not detail:
        return invoke.error_response(400, "datos_incompletos", "Indique la pieza y qué incumple.")
    report = Effect(id=f"brand/{uuid.uuid4()}", kind=EffectKind.NOTIFY, request_number="",
                    payload={"to": {"role": Role.COORDINATOR.value}, "template": "brand_report",
                             "by": person.id, "by_name": person.name, "piece": piece, "detail": detail})
    await bot.store.add_effects([report])
    bot.on_transition()
    return invoke.card_response(cards.message_card(
        "Gracias: su reporte de incumplimiento de la línea gráfica fue enviado al Coordinador(a) de Marketing "
        "e Imagen Institucional.", "good"))


FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"


def shared_files(activity: Activity) -> list[cards.AttachedFile]:
    """Files someone shared in the chat (Teams sends them as file download info attachments)."""
    files = []
    for attachment in activity.attachments or []:
        if attachment.content_type != FILE_DOWNLOAD_INFO or not isinstance(attachment.content, dict):
            continue
        source = attachment.content.get("downloadUrl") or ""
        url = attachment.content_url or source
        if url.startswith("https://") or url.startswith("http://"):
            files.append(cards.AttachedFile(name=(attachment.name or "archivo")[:200], url=url, source=source))
    return files


def kind_label(kind: str) -> str:
    try:
        return Deliverable(kind).label
    except ValueError:
        return "entregable"
