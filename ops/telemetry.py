"""OpenTelemetry: a span per turn and per effect delivery, counters of transitions and effects, Azure Monitor when configured.

Spans and counters go through opentelemetry-api (installed with msgraph's kiota): without a configured
provider they cost next to nothing and go nowhere. `configure(settings)` sends them to Application
Insights only when APPLICATIONINSIGHTS_CONNECTION_STRING is set and azure-monitor-opentelemetry is
installed. Logs are not exported that way: they already reach Log Analytics as JSON lines on stderr
(ops/logging.py), and they carry the trace id to join the two.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import metrics, trace

NAME = "claqueta"
MISSING_PACKAGE = ("APPLICATIONINSIGHTS_CONNECTION_STRING está definida pero falta el paquete "
                   "azure-monitor-opentelemetry: no se envían trazas ni métricas a Application Insights "
                   "(instálelo con «pip install -r requirements.txt»).")

log = logging.getLogger(__name__)

# Tests hand their own SDK providers here; None means OpenTelemetry's global ones.
_tracer_provider: Any = None
_meter_provider: Any = None
_counters: dict[tuple[int, str], Any] = {}


def configure(settings) -> bool:
    """Start exporting traces and metrics to Azure Monitor; False (and a warning when it matters) otherwise."""
    connection_string = settings.applicationinsights_connection_string.get_secret_value()
    if not connection_string:
        return False
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        log.warning(MISSING_PACKAGE)
        return False
    try:
        configure_azure_monitor(connection_string=connection_string, disable_logging=True,
                                # Frameworks the bot does not use: nothing to instrument there.
                                instrumentation_options={"django": {"enabled": False}, "fastapi": {"enabled": False},
                                                         "flask": {"enabled": False}, "psycopg2": {"enabled": False}})
    except Exception as exc:  # noqa: BLE001 - telemetry must never keep the bot from starting
        log.warning("No se pudo configurar Application Insights (%s): el bot sigue sin telemetría.",
                    type(exc).__name__)
        return False
    log.info("Trazas y métricas hacia Application Insights activadas.")
    return True


def use(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send spans and metrics to these providers instead of the global ones (tests)."""
    global _tracer_provider, _meter_provider
    _tracer_provider, _meter_provider = tracer_provider, meter_provider
    _counters.clear()


def tracer():
    return trace.get_tracer(NAME, tracer_provider=_tracer_provider)


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span with the given attributes (None values left out); exceptions are recorded on it."""
    clean = {k: v for k, v in attributes.items() if v is not None and v != ""}
    with tracer().start_as_current_span(name, attributes=clean) as current:
        yield current


def _counter(name: str, description: str):
    meter_provider = _meter_provider or metrics.get_meter_provider()
    key = (id(meter_provider), name)
    if key not in _counters:
        _counters[key] = metrics.get_meter(NAME, meter_provider=_meter_provider).create_counter(
            name, unit="1", description=description)
    return _counters[key]


def count_transition() -> None:
    _counter("claqueta.transitions", "Transiciones de solicitudes guardadas").add(1)


def count_effect(kind: str, outcome: str) -> None:
    """outcome: delivered, retry (failed, will be tried again) or failed (kept for the coordinator)."""
    name = "claqueta.effects.delivered" if outcome == "delivered" else "claqueta.effects.failed"
    attributes = {"effect.kind": kind} if outcome == "delivered" else {"effect.kind": kind, "outcome": outcome}
    _counter(name, "Efectos entregados" if outcome == "delivered" else "Intentos fallidos de efectos").add(
        1, attributes)
