"""Every card the bot can send: valid against the official Adaptive Card schema, small, safe and clickable."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest
from markdown_it import MarkdownIt

from cards.base import MAX_CARD_BYTES, open_url
from cards.builders import (
    AgendaRow,
    agenda_card,
    help_card,
    history_card,
    intake_form_card,
    message_card,
    request_list_card,
    request_status_card,
    request_summary_card,
    step_card,
    welcome_card,
)
from cards.text import escape, escape_line, plain_html
from cards import reminders as reminder_cards
from cards.verbs import CardData, Inputs, Verb, split_choices
from procedure.definition import PROCEDURE
from procedure.engine import Action, Command, Intake, apply, file_request, open_actions
from procedure.model import END, StepKind
from procedure.request import Request, Status
from procedure.roles import Role
from tests.card_json import walk as _walk
from tests.driving import (
    AREAS,
    COORDINATOR,
    DIRECTOR_DE,
    LEAD_TIMES,
    NOW,
    OUTSIDER,
    PEOPLE,
    REQUESTER,
    classification,
    full_command,
    who_can,
)

SCHEMA_PATH = Path(__file__).parent / "schemas" / "adaptive-card.json"
HOSTILE = "**x** [a](https://evil) ${x} <b>"
AREA_NAMES = {"DE": "Dirección Ejecutiva", "DSI": "Dirección de Servicios al Inversionista",
              "SASA": "Sub Dirección de Asuntos Sociales y Ambientales", "DPP": "DPP", "DEP": "DEP",
              "OCOIM": "OCOIM"}
NAMES = {p.id: p.name for p in PEOPLE}
# Execute verbs that act before a request exists (or on no single request): they carry no CardData.
NO_CARD_DATA = {Verb.INTAKE_SUBMIT.value, Verb.AGENDA_FILTER.value, Verb.AGENDA_EXPORT.value, Verb.BRAND_REPORT.value}


# ── Building the requests the bot meets ─────────────────────────────────────────────────────


def _states(c, number: str, adjust: dict[str, int], start: str | None = None) -> tuple[list[Request], list]:
    """Every state a request passes through, filed with a hostile title and reviewed with hostile observations."""
    intake = Intake(title=HOSTILE, area="DE", due_date=date(2027, 3, 1), purpose=HOSTILE, inputs=HOSTILE,
                    links=("https://proinversion.sharepoint.com/brief.docx",), involved_areas=("DSI",),
                    expected_type=c.piece_type, piece_url="https://proinversion.sharepoint.com/terceros/pieza.mp4", producer=HOSTILE)
    request = file_request(PROCEDURE, intake, number, REQUESTER, NOW, AREAS, LEAD_TIMES, start).request
    states, history = [request], []
    for _ in range(200):
        if request.step_id == END:
            return states, history
        step = PROCEDURE[request.step_id]
        if step.kind is StepKind.REVIEW:
            action = Action.REQUEST_CHANGES if request.rounds(step.id) < adjust.get(step.id, 0) else Action.APPROVE
        else:
            action = Action.COMPLETE
        extra = {"observation": HOSTILE} if action is Action.REQUEST_CHANGES else {}
        outcome = apply(PROCEDURE, request, full_command(request, action, c, **extra), who_can(request, action),
                        NOW, LEAD_TIMES)
        history += outcome.history
        request = outcome.request
        states.append(request)
    raise AssertionError("the request never finished")


TYPE_A = _states(classification("A", internal=True, services=("animation", "filming", "editing"), producer=True),
                 "2026-0007", {"PRE-10": 2, "PRE-14": 1, "PRO-07": 1, "PRO-11": 1, "POS-04": 1})
TYPE_B = _states(classification("B", app_pa=True, services=("editing",)), "2026-0008", {"PRE-10": 1})
THIRD_PARTY = _states(classification("B"), "2026-0009", {"TER-01": 1}, start="TER-01")
STATES = TYPE_A[0] + TYPE_B[0] + THIRD_PARTY[0]
HISTORY = {"2026-0007": TYPE_A[1], "2026-0008": TYPE_B[1], "2026-0009": THIRD_PARTY[1]}
ALL_ACTIONS_BY_KIND = {
    StepKind.REVIEW: [Action.APPROVE, Action.REQUEST_CHANGES],
    StepKind.CONFORMITY: [Action.APPROVE, Action.REQUEST_CHANGES],
}
MANAGE = [Action.REASSIGN, Action.HOLD, Action.CANCEL, Action.EDIT]


def _can_act(request: Request) -> list[str]:
    return [p.id for p in PEOPLE if open_actions(PROCEDURE, request, p)[:1] in ([Action.COMPLETE], [Action.APPROVE])]


def _actor_cards() -> Iterator[tuple[str, dict, Request]]:
    """For each state: the card of whoever may act, of the coordinator, and of someone who may not act."""
    for request in STATES:
        tail = HISTORY[request.number][-3:]
        for person in PEOPLE:
            acts = open_actions(PROCEDURE, request, person)
            if not acts and person is not OUTSIDER:
                continue
            yield (f"{request.number}/{request.step_id}/v{request.version}/{person.id}",
                   step_card(PROCEDURE, request, viewer_actions=acts, people=NAMES, can_act_user_ids=_can_act(request),
                             refreshed_for=person.id, history_tail=tail, today=NOW.date()), request)


def _every_step_cards() -> Iterator[tuple[str, dict, Request]]:
    """Every one of the 38 steps, also those no walk stops at (conformities), with every action it can offer."""
    base = TYPE_A[0][-2]  # late in the walk: every kind of deliverable and observation is on it
    for step in PROCEDURE.steps:
        request = base.model_copy(update={"step_id": step.id, "status": Status.ACTIVE})
        acts = ALL_ACTIONS_BY_KIND.get(step.kind, [Action.COMPLETE]) + [Action.OBSERVE] + MANAGE
        yield f"every/{step.id}/actor", step_card(PROCEDURE, request, viewer_actions=acts, people=NAMES,
                                                  can_act_user_ids=["coord"], today=NOW.date()), request
        yield f"every/{step.id}/readonly", step_card(PROCEDURE, request, viewer_actions=[], people=NAMES,
                                                     can_act_user_ids=["coord"], refreshed_for="out",
                                                     history_tail=HISTORY["2026-0007"][-2:]), request


def _other_cards() -> Iterator[tuple[str, dict, Request | None]]:
    first, last = TYPE_A[0][0], TYPE_A[0][-1]
    on_hold = apply(PROCEDURE, TYPE_B[0][5], Command(Action.HOLD, TYPE_B[0][5].version, reason=HOSTILE),
                    COORDINATOR, NOW).request
    cancelled = apply(PROCEDURE, on_hold, Command(Action.CANCEL, on_hold.version, reason=HOSTILE),
                      COORDINATOR, NOW).request
    yield "welcome/local", welcome_card(True), None
    yield "welcome/tenant", welcome_card(False), None
    yield "help/coordinator/local", help_card(True, True), None
    yield "help/requester", help_card(False, False), None
    for style in ("default", "good", "attention", "warning"):
        yield f"message/{style}", message_card(HOSTILE, style), None
    yield "intake/empty", intake_form_card(AREA_NAMES, today=NOW.date()), None
    yield "intake/errors", intake_form_card(
        AREA_NAMES, {"title": HOSTILE, "area": "DE", "due_date": date(2020, 1, 1), "expected_type": "A",
                     "purpose": HOSTILE, "inputs": HOSTILE, "links": ["https://a.example", "ftp://b"],
                     "involved_areas": ["DSI", "SASA"]},
        {"title": "El título no puede superar los 200 caracteres.", "due_date": "La fecha no puede estar en el pasado.",
         "links": f"Estos enlaces no son válidos: {HOSTILE}", "area": "Elija el área."}, today=NOW.date()), None
    yield "summary/warning", request_summary_card(PROCEDURE, first, ["La fecha de entrega deja 3 días hábiles."]), first
    yield "summary/plain", request_summary_card(PROCEDURE, first), first
    for request in (first, TYPE_A[0][20], on_hold, cancelled, last):
        yield f"status/{request.step_id}/{request.status.value}", request_status_card(
            PROCEDURE, request, HISTORY[request.number][-3:], people=NAMES), request
    for request in (on_hold, cancelled):
        yield f"step/{request.status.value}/coordinator", step_card(
            PROCEDURE, request, viewer_actions=open_actions(PROCEDURE, request, COORDINATOR), people=NAMES,
            can_act_user_ids=[], today=NOW.date()), request
    yield "history/long", history_card(last, HISTORY[last.number]), last
    yield "history/empty", history_card(first, []), first
    yield "list/mine", request_list_card("Mis solicitudes", [s for s in STATES if s.version % 3 == 0][:40],
                                         PROCEDURE, "No tiene solicitudes."), None
    yield "list/empty", request_list_card("Mis pendientes", [], PROCEDURE, "No tiene pasos pendientes."), None
    rows = [AgendaRow(s.number, s.version, s.title, s.step_id, PROCEDURE[s.step_id].name, HOSTILE,
                      s.production_deadline or s.due_date, "En curso", overdue=i % 4 == 0)
            for i, s in enumerate(STATES) if s.step_id != END]
    groups = {"Preproducción": [r for r in rows if r.step_id.startswith("PRE")],
              "Producción": [r for r in rows if r.step_id.startswith("PRO")],
              "Postproducción": [r for r in rows if r.step_id.startswith("POS")]}
    yield "agenda/full", agenda_card(groups, areas=AREA_NAMES, owners=NAMES, selected={Inputs.FILTER_AREA: "DE"}), None
    yield "agenda/empty", agenda_card({"Preproducción": [], "Producción": [], "Postproducción": []}), None
    yield "agenda/indicators", agenda_card(groups, indicators=[("Entregas a tiempo", "50 %"), (HOSTILE, HOSTILE)]), None
    reminder = {"step_id": "PRE-14", "step_name": PROCEDURE["PRE-14"].name, "title": HOSTILE,
                "deadline": "2026-12-11", "status_label": "Vencido (2 días hábiles)", "director": HOSTILE}
    for template in reminder_cards.HEADLINES:
        yield f"reminder/{template}", reminder_cards.reminder_card(
            {**reminder, "template": template}, first.number, first.version), None
    item = {"number": first.number, "title": HOSTILE, "step_id": "PRE-14", "status_label": "Vencido", "director": HOSTILE}
    yield "digest/full", reminder_cards.digest_card({"day": "2026-12-14", "overdue": [item] * 12, "due_soon": [item],
                                                     "awaiting_directors": [item], "at_risk": [item],
                                                     "failed_effects": {"count": 2, "ids": ["a", "b"]}}), None
    yield "digest/empty", reminder_cards.digest_card({"day": "2026-12-14"}), None
    yield "brand/form", reminder_cards.brand_report_form(), None
    stale = TYPE_A[0][10]
    yield "step/outdated", step_card(
        PROCEDURE, stale, viewer_actions=[], people=NAMES, can_act_user_ids=[],
        notice=f"Esta tarjeta estaba desactualizada: {HOSTILE} ya dio conformidad el 04/12 a las 10:32",
        history_tail=HISTORY[stale.number][-1:]), stale


ALL_CARDS: list[tuple[str, dict, Request | None]] = [*_actor_cards(), *_every_step_cards(), *_other_cards()]


# ── Walking a card's JSON ───────────────────────────────────────────────────────────────────




def _markdown_texts(card: dict) -> Iterator[str]:
    """Every string a host renders as markdown: TextBlock text and Fact title/value."""
    for node in _walk(card):
        if node.get("type") == "TextBlock":
            yield node["text"]
        elif "title" in node and "value" in node and "type" not in node and isinstance(node["value"], str):
            yield node["title"]
            yield node["value"]


MD = MarkdownIt("commonmark", {"html": False})


def _render(text: str) -> str:
    return MD.render(text)


# ── The tests ───────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft6Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


def test_the_set_covers_every_step_and_every_kind_of_card():
    steps_with_cards = {req.step_id for _, _, req in ALL_CARDS if req is not None}
    assert {s.id for s in PROCEDURE.steps} <= steps_with_cards
    walked = {s.step_id for s in STATES}
    # The walks really stop at every step a request can wait on (all but the conformities, which
    # are recorded together with their review).
    assert {s.id for s in PROCEDURE.steps if s.kind is not StepKind.CONFORMITY} <= walked
    assert len(ALL_CARDS) > 200


def test_the_schema_rejects_what_it_should(validator):
    """The vendored schema is the real one, not a permissive stand-in."""
    assert not validator.is_valid({"type": "AdaptiveCard", "version": "1.5",
                                   "body": [{"type": "TextBlock", "text": "x", "colour": "red"}]})
    assert not validator.is_valid({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Input.Text"}]})
    assert not validator.is_valid({"type": "AdaptiveCard", "version": "1.5",
                                   "refresh": {"action": {"type": "Action.Submit"}}})


@pytest.mark.parametrize("name,card", [(n, c) for n, c, _ in ALL_CARDS], ids=[n for n, _, _ in ALL_CARDS])
def test_every_card_is_valid_small_and_version_1_5(validator, name, card):
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(card)]
    assert not errors, errors[:5]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert len(json.dumps(card).encode("utf-8")) < MAX_CARD_BYTES // 2


def test_report_the_largest_card():
    sizes = sorted(((len(json.dumps(c).encode("utf-8")), n) for n, c, _ in ALL_CARDS),
                   reverse=True)
    print(f"\nlargest cards: {sizes[:3]} (limit {MAX_CARD_BYTES} bytes), {len(sizes)} cards")
    assert sizes[0][0] < MAX_CARD_BYTES // 2


@pytest.mark.parametrize("name,card,request_", ALL_CARDS, ids=[n for n, _, _ in ALL_CARDS])
def test_every_execute_action_is_registered_and_parses_back(name, card, request_):
    for node in _walk(card):
        if node.get("type") != "Action.Execute":
            continue
        assert node["verb"] in {v.value for v in Verb}
        if node["verb"] in NO_CARD_DATA:
            continue
        data = CardData.parse(node["data"])
        if request_ is not None and node["verb"] != Verb.REQUEST_SHOW.value:
            assert (data.number, data.version, data.step) == (request_.number, request_.version, request_.step_id)
        fallback = node.get("fallback")
        if fallback is not None:
            assert fallback["type"] == "Action.Submit" and fallback["data"]["verb"] == node["verb"]
            assert CardData.parse(fallback["data"]) == data


@pytest.mark.parametrize("name,card", [(n, c) for n, c, _ in ALL_CARDS], ids=[n for n, _, _ in ALL_CARDS])
def test_input_ids_are_unique_in_each_card(name, card):
    ids = [node["id"] for node in _walk(card) if str(node.get("type", "")).startswith("Input.")]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("name,card", [(n, c) for n, c, _ in ALL_CARDS], ids=[n for n, _, _ in ALL_CARDS])
def test_hostile_text_never_renders_as_markdown_links_or_templates(name, card):
    for text in _markdown_texts(card):
        rendered = _render(text)
        assert "<a " not in rendered, text
        assert "<strong>x</strong>" not in rendered and "<em>x</em>" not in rendered, text
        assert "${" not in text and "{{" not in text, text
        assert "<b>" not in text, text
    for node in _walk(card):
        if node.get("type") == "Action.OpenUrl":
            assert node["url"].startswith("https://proinversion.sharepoint.com/"), node["url"]


def test_refresh_lists_at_most_60_people_who_may_act():
    request = TYPE_A[0][3]
    ids = [f"user-{i}" for i in range(100)]
    card = step_card(PROCEDURE, request, viewer_actions=[], can_act_user_ids=ids + ids[:5])
    assert card["refresh"]["userIds"] == ids[:60]
    assert card["refresh"]["action"]["verb"] == Verb.REQUEST_REFRESH.value
    assert CardData.parse(card["refresh"]["action"]["data"]) == CardData(
        number=request.number, version=request.version, step=request.step_id)


def _texts(card: dict) -> str:
    return "\n".join(_markdown_texts(card))


def _execute_verbs(card: dict) -> list[str]:
    return [n["verb"] for n in _walk(card) if n.get("type") == "Action.Execute"]


def _state_at(step_id: str, states=None) -> Request:
    return next(s for s in (states or TYPE_A[0]) if s.step_id == step_id)


def test_director_review_card_shows_what_is_approved_and_earlier_observations():
    request = [s for s in TYPE_A[0] if s.step_id == "PRE-14"][-1]  # second round, after the area's adjustments
    card = step_card(PROCEDURE, request, viewer_actions=open_actions(PROCEDURE, request, DIRECTOR_DE),
                     can_act_user_ids=["dir-de"], today=NOW.date())
    texts = _texts(card)
    assert card["body"][0]["text"] == "PRE-14 · Revisar el guion y storyboard"
    assert "Ronda de revisión" in texts and "Observaciones de rondas anteriores (PRE-14)" in texts
    assert escape(HOSTILE) in texts  # the observation, literal
    buttons = [n["title"] for n in _walk(card) if n.get("type") == "Action.OpenUrl"]
    assert any(b.startswith("Ver guion") for b in buttons) and any(b.startswith("Ver storyboard") for b in buttons)
    verbs = _execute_verbs(card)
    assert Verb.REVIEW_APPROVE.value in verbs and Verb.REVIEW_CHANGES.value in verbs
    changes = next(n for n in _walk(card) if n.get("type") == "Action.ShowCard" and n["title"] == "Solicitar ajustes")
    observation = next(n for n in _walk(changes) if n.get("id") == Inputs.CHANGES_OBSERVATION)
    assert observation["isRequired"] is True


def test_read_only_card_says_who_must_act_and_the_last_movement():
    request = _state_at("PRE-05")
    card = step_card(PROCEDURE, request, viewer_actions=[], people=NAMES, can_act_user_ids=["press"],
                     refreshed_for="out",
                     history_tail=[e for e in HISTORY[request.number] if e.version <= request.version])
    texts = _texts(card)
    assert "**Pendiente de:** " + escape_line(Role.PRESS.label) in texts
    assert "completó PRE\\-04" not in texts  # a step id is ours: not escaped into noise
    assert "completó PRE-04" in texts and "04/12 10:00" in texts
    assert not [n for n in _walk(card) if str(n.get("type", "")).startswith("Input.")]
    assert set(_execute_verbs(card)) == {Verb.REQUEST_HISTORY.value, Verb.REQUEST_REFRESH.value}


def test_outdated_click_notice_comes_first_in_warning_style():
    request = _state_at("PRE-10")
    card = step_card(PROCEDURE, request, viewer_actions=[], notice="Esta tarjeta estaba desactualizada: Dora Díaz "
                     "ya dio conformidad el 04/12 a las 10:32")
    first = card["body"][0]
    assert first["type"] == "Container" and first["style"] == "warning"
    assert "Dora Díaz ya dio conformidad el 04/12 a las 10:32" in first["items"][0]["text"]


def test_pre01_card_asks_for_the_classification():
    request = TYPE_A[0][0]
    card = step_card(PROCEDURE, request, viewer_actions=open_actions(PROCEDURE, request, COORDINATOR),
                     people={"coord": "Carla Quispe"}, can_act_user_ids=["coord"], today=NOW.date())
    ids = {n["id"] for n in _walk(card) if "id" in n and str(n.get("type", "")).startswith("Input.")}
    assert {Inputs.PIECE_TYPE, Inputs.TOPIC, Inputs.INVESTMENT_PROJECT, Inputs.PROJECT_NAME, Inputs.AUDIENCE,
            Inputs.SERVICES, Inputs.OUTSIDE_PRODUCER} <= ids
    titles = [n.get("title") for n in _walk(card) if n.get("type") == "Action.Execute"]
    assert "Completar PRE-01" in titles
    assert {"Reasignar", "Poner en espera", "Cancelar solicitud"} <= {
        n["title"] for n in _walk(card) if n.get("type") == "Action.ShowCard"}


def test_deliverable_inputs_and_meeting_inputs():
    request = _state_at("PRE-08", TYPE_B[0])
    card = step_card(PROCEDURE, request, viewer_actions=[Action.COMPLETE], today=NOW.date())
    inputs = {n["id"]: n for n in _walk(card) if str(n.get("type", "")).startswith("Input.")}
    assert inputs["deliverable.script"]["placeholder"] == "https://…"
    assert "deliverable.storyboard" in inputs
    assert "adjunte el archivo en el chat" in _texts(card)

    meeting = step_card(PROCEDURE, _state_at("PRE-05"), viewer_actions=[Action.COMPLETE], today=NOW.date())
    ids = {n["id"] for n in _walk(meeting) if str(n.get("type", "")).startswith("Input.")}
    assert {Inputs.MEETING_DATE, Inputs.MEETING_TIME, Inputs.MEETING_MINUTES} <= ids
    titles = {n["title"]: n["verb"] for n in _walk(meeting) if n.get("type") == "Action.Execute" and "title" in n}
    assert titles["Convocar reunión"] == Verb.STEP_COMPLETE.value
    assert titles["Ver horarios libres"] == Verb.MEETING_SLOTS.value

    pos08 = step_card(PROCEDURE, _state_at("POS-08"), viewer_actions=[Action.COMPLETE], today=NOW.date())
    channels = next(n for n in _walk(pos08) if n.get("id") == Inputs.CHANNELS)
    assert [c["title"] for c in channels["choices"]] == ["Redes sociales", "Intranet", "Portal institucional",
                                                          "Red social interna", "Correo institucional",
                                                          "Entrega al área usuaria"]


def test_intake_form_refills_values_and_shows_errors_next_to_fields():
    card = intake_form_card(AREA_NAMES, {"title": "Video DSI", "area": "DSI", "links": ["https://a", "https://b"],
                                         "involved_areas": ["DE", "NOPE"]}, {"title": "Título demasiado largo."},
                            today=date(2026, 12, 4))
    body = card["body"]
    index = next(i for i, n in enumerate(body) if n.get("id") == Inputs.TITLE)
    assert body[index]["value"] == "Video DSI" and body[index]["isRequired"] is True
    assert body[index]["maxLength"] == 200
    assert body[index + 1]["text"] == "Título demasiado largo." and body[index + 1]["color"] == "Attention"
    inputs = {n["id"]: n for n in body if "id" in n}
    assert inputs[Inputs.AREA]["value"] == "DSI"
    assert inputs[Inputs.LINKS]["value"] == "https://a\nhttps://b"
    assert inputs[Inputs.INVOLVED_AREAS]["value"] == "DE"
    assert inputs[Inputs.DUE_DATE]["min"] == "2026-12-04"
    assert [c["value"] for c in inputs[Inputs.EXPECTED_TYPE]["choices"]] == ["A", "B", "unknown"]
    assert _execute_verbs(card) == [Verb.INTAKE_SUBMIT.value]


def test_history_card_uses_lima_dates():
    request = TYPE_A[0][-1]
    card = history_card(request, HISTORY[request.number])
    texts = _texts(card)
    assert "04/12/2026 10:00 · PRE\\-01" not in texts
    assert texts.index("04/12/2026 10:00 · POS-08") < texts.index("04/12/2026 10:00 · POS-07")  # newest first
    assert "Se muestran los últimos 30" in texts


def test_list_rows_open_the_request():
    requests = [TYPE_A[0][3], TYPE_B[0][2]]
    card = request_list_card("Mis pendientes", requests, PROCEDURE)
    shows = [CardData.parse(n["data"]) for n in _walk(card)
             if n.get("type") == "Action.Execute" and n["verb"] == Verb.REQUEST_SHOW.value]
    assert [(d.number, d.version) for d in shows] == [(r.number, r.version) for r in requests]


# ── Escaping ─────────────────────────────────────────────────────────────────────────────────


def _literal(rendered: str) -> str:
    return html.unescape(re.sub(r"</?p>\n?", "", rendered)).strip()


@pytest.mark.parametrize("text", [
    "**negrita** [clic](https://malo.example)",
    HOSTILE,
    "_cursiva_ `código` ~~tachado~~ | tabla |",
    "# Título\n- viñeta\n+ otra\n1. uno\n2) dos\n> cita",
    "![img](https://malo.example/x.png) <https://malo.example> \\*",
    "{{DATE(2026-12-04T10:00:00Z, SHORT)}}",
])
def test_escaped_text_renders_as_the_literal_text(text):
    rendered = _render(escape(text))
    assert "<a " not in rendered and "<strong>" not in rendered and "<em>" not in rendered
    assert "<img" not in rendered and "<h1>" not in rendered and "<li>" not in rendered
    assert "<blockquote>" not in rendered and "<code>" not in rendered
    expected = "\n".join(line.strip() for line in text.split("\n"))
    assert _literal(rendered).replace("\u2060", "") == expected


def test_bold_and_link_are_literal():
    escaped = escape("**negrita** [clic](https://malo.example)")
    assert escaped == "\\*\\*negrita\\*\\* \\[clic\\]\\(https:\u2060//malo.example\\)"
    assert _literal(_render(escaped)).replace("\u2060", "") == "**negrita** [clic](https://malo.example)"


def test_newlines_are_kept_sane():
    assert escape("uno\r\n\r\n\r\n\r\ndos   \n    tres\x00") == "uno\n\ndos\ntres"
    assert escape_line("uno\ndos", 5) == "uno…"


def test_plain_html_escapes_for_email():
    assert plain_html('<b>hola</b> & "x"\nlínea') == "&lt;b&gt;hola&lt;/b&gt; &amp; &quot;x&quot;<br>\nlínea"


def test_only_http_links_become_buttons():
    assert open_url("Ver", "javascript:alert(1)") is None
    assert open_url("Ver", "file:///etc/passwd") is None
    assert open_url("Ver", "https://ok.example/a b") is None
    assert open_url("Ver", "https://ok.example/a").url == "https://ok.example/a"


def test_card_data_builds_and_parses_the_same_payload():
    card = CardData(number="2026-0001", version=3, step="PRE-10")
    action = card.execute(Verb.REVIEW_APPROVE, "Dar conformidad")
    sent = action.model_dump(by_alias=True, exclude_none=True)
    click = {**sent["data"], Inputs.APPROVE_COMMENT: "ok"}  # Teams merges the inputs into data
    assert CardData.parse(click) == card
    assert Inputs.get(click, Inputs.APPROVE_COMMENT) == "ok"
    with pytest.raises(ValueError):
        CardData.parse({"number": "2026-0001"})
    with pytest.raises(ValueError):
        CardData.parse(None)
    assert split_choices("animation,editing,,animation") == ["animation", "editing"]
