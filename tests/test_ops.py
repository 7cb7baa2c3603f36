"""Operations: JSON log lines with the turn's and the effect's context, scrubbed secrets, and optional telemetry."""

from __future__ import annotations

import io
import json
import logging
import sys
import types
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app import build, create_web_app
from cards.verbs import Inputs, Verb
from config.settings import Settings
from ops import logging as ops_logging, telemetry
from tests import activities
from tests.driving import NOW
from tests.fake_connector import FakeConnector
from tests.test_bot_flow import user
from tests.test_reminders import drive

ROOT = Path(__file__).resolve().parents[1]
APP_PASSWORD = "Zk8~appPasswordValue.123"


def settings_for(tmp_path, **overrides) -> Settings:
    values = dict(_env_file=None, local_mode=True, app_id="", data_dir=tmp_path, now=NOW,
                  people_file=ROOT / "config" / "people.example.yaml", app_password=APP_PASSWORD,
                  office_mailbox="ocoim@proinversion.gob.pe")
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def log_lines(tmp_path):
    """The root logger writing JSON lines into a buffer; yields a function returning the parsed lines."""
    stream = io.StringIO()
    handler = ops_logging.configure(settings_for(tmp_path, log_format="json"), stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_each_line_is_one_json_object_with_the_context(log_lines):
    with ops_logging.log_context(correlation_id="abc-1", request_number="2026-0007", step_id="PRE-14"):
        logging.getLogger("claqueta.prueba").warning("la solicitud %s espera", "2026-0007")
    logging.getLogger("claqueta.prueba").warning("fuera de contexto")
    inside, outside = log_lines()[-2:]
    assert inside["level"] == "WARNING" and inside["logger"] == "claqueta.prueba"
    assert inside["message"] == "la solicitud 2026-0007 espera"
    assert inside["correlation_id"] == "abc-1" and inside["request_number"] == "2026-0007"
    assert inside["step_id"] == "PRE-14" and inside["ts"].endswith("+00:00")
    assert "correlation_id" not in outside  # the context ends with its block


def test_secrets_and_emails_are_scrubbed_from_messages_and_tracebacks(log_lines):
    log = logging.getLogger("claqueta.prueba")
    log.error("Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl para ana.perez@proinversion.gob.pe")
    log.error("la contraseña es %s", APP_PASSWORD)
    try:
        raise RuntimeError(f"client_secret=abc123 falló para {APP_PASSWORD}")
    except RuntimeError:
        log.exception("falló el envío a luis@proinversion.gob.pe desde ocoim@proinversion.gob.pe")
    text = json.dumps(log_lines()[-3:], ensure_ascii=False)
    for secret in ("eyJhbGciOi", APP_PASSWORD, "abc123", "ana.perez@", "luis@"):
        assert secret not in text
    assert "[oculto]" in text and "[correo]" in text
    assert "ocoim@proinversion.gob.pe" in text  # the office's mailbox is not personal data: kept for the operator
    assert "RuntimeError" in log_lines()[-1]["exception"]


def test_text_in_local_mode_json_otherwise(tmp_path):
    assert settings_for(tmp_path).logs_as_json is False
    assert settings_for(tmp_path, local_mode=False, app_id="11111111-2222-3333-4444-555555555555").logs_as_json
    assert settings_for(tmp_path, log_format="json").logs_as_json


async def test_a_line_logged_during_a_turn_carries_its_activity_id_verb_and_request(tmp_path, log_lines):
    components = build(settings_for(tmp_path))
    async with FakeConnector() as connector:
        async with TestClient(TestServer(create_web_app(components, schedule_reminders=False,
                                                        dispatch_effects=False))) as client:
            # A click whose verb is missing: the bot logs a warning in the middle of the turn.
            activity = activities.card_action("", {"number": "2026-0042", "step": "PRE-14"},
                                              service_url=connector.service_url, user=user("director_dsi"))
            activity["id"] = "f:turno-123"
            response = await client.post("/api/messages", json=activity)
            assert response.status == 200
    (line,) = [x for x in log_lines() if "without a verb" in x["message"]]
    assert line["correlation_id"] == "f:turno-123" and line["activity_type"] == "invoke"
    assert line["request_number"] == "2026-0042" and line["step_id"] == "PRE-14"


class FailingNotifier:
    async def notify(self, person_id, message):
        raise RuntimeError("connector said 502 with Authorization: Bearer secreto-del-conector")


async def test_a_line_logged_while_delivering_an_effect_names_the_effect_and_its_request(tmp_path, log_lines):
    components = build(settings_for(tmp_path), notifier=FailingNotifier())
    await drive(components.store, "2026-0001", "PRE-02")
    while await components.dispatcher.run_once():
        pass
    failed = [x for x in log_lines() if x["logger"] == "services.dispatcher" and "failed" in x["message"]]
    assert failed
    assert all(x["request_number"] == "2026-0001" and x["effect_id"] in x["message"] and
               x["correlation_id"] == x["effect_id"] and x["effect_kind"] for x in failed)
    assert not any("secreto-del-conector" in x["message"] for x in failed)
    await components.store.close()


# ── Telemetry ──────────────────────────────────────────────────────────────────────────────

@pytest.fixture
def azure_monitor(monkeypatch):
    """A stand-in azure.monitor.opentelemetry that records how it was configured (nothing leaves the machine)."""
    calls: list[dict] = []
    module = types.ModuleType("azure.monitor.opentelemetry")
    module.configure_azure_monitor = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", module)
    return calls


def test_without_a_connection_string_nothing_is_configured(tmp_path, azure_monitor):
    assert telemetry.configure(settings_for(tmp_path)) is False
    assert azure_monitor == []


def test_with_a_connection_string_traces_and_metrics_go_to_azure_monitor(tmp_path, azure_monitor):
    connection = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1/"
    assert telemetry.configure(settings_for(tmp_path, applicationinsights_connection_string=connection)) is True
    (kwargs,) = azure_monitor
    assert kwargs["connection_string"] == connection
    assert kwargs["disable_logging"] is True  # logs already reach Log Analytics as JSON lines on stderr


def test_with_a_connection_string_and_no_package_it_warns_and_carries_on(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", None)  # import fails as if not installed
    settings = settings_for(tmp_path, applicationinsights_connection_string="InstrumentationKey=x")
    with caplog.at_level(logging.WARNING, logger="ops.telemetry"):
        assert telemetry.configure(settings) is False
    assert telemetry.MISSING_PACKAGE in caplog.text and "azure-monitor-opentelemetry" in caplog.text


@pytest.fixture
def recorded():
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry.use(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]))
    yield spans, reader
    telemetry.use()


def counters(reader) -> dict[str, int]:
    totals: dict[str, int] = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                totals[metric.name] = sum(p.value for p in metric.data.data_points)
    return totals


async def test_a_turn_and_an_effect_delivery_each_make_a_span_and_are_counted(tmp_path, recorded):
    spans, reader = recorded
    components = build(settings_for(tmp_path))
    async with FakeConnector() as connector:
        async with TestClient(TestServer(create_web_app(components, schedule_reminders=False,
                                                        dispatch_effects=False))) as client:
            click = activities.card_action(Verb.INTAKE_SUBMIT.value, {
                Inputs.TITLE: "Video institucional", Inputs.AREA: "DSI", Inputs.DUE_DATE: "2027-03-15"},
                service_url=connector.service_url, user=user("requester"))
            assert (await client.post("/api/messages", json=click)).status == 200
            while await components.dispatcher.run_once():
                pass
    names = [s.name for s in spans.get_finished_spans()]
    turn = next(s for s in spans.get_finished_spans() if s.name == "bot.turn")
    assert turn.attributes["claqueta.verb"] == Verb.INTAKE_SUBMIT.value
    assert turn.attributes["claqueta.activity_type"] == "invoke"
    assert "effect.deliver" in names
    totals = counters(reader)
    assert totals["claqueta.transitions"] == 1  # filing the request
    delivered = sum(1 for s in spans.get_finished_spans() if s.name == "effect.deliver")
    assert totals.get("claqueta.effects.delivered", 0) + totals.get("claqueta.effects.failed", 0) == delivered
