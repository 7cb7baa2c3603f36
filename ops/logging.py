"""Structured logs: one JSON object per line with the turn's or the effect's context, secrets and personal data scrubbed."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import IO, Any, Iterable, Iterator

# What a line may say about where it came from. Person ids are fine (an operator needs them to
# follow a case); names, emails and message text are not.
CONTEXT_FIELDS = ("correlation_id", "request_number", "step_id", "activity_type", "verb", "effect_id", "effect_kind")

_context: ContextVar[dict[str, str]] = ContextVar("claqueta_log_context", default={})


def current_context() -> dict[str, str]:
    return dict(_context.get())


def bind(**fields: Any) -> None:
    """Add fields to the context for the rest of the current task (a turn, an effect delivery)."""
    _context.set({**_context.get(), **_clean(fields)})


@contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, str]]:
    """Fields every line logged inside the block carries; restored on exit."""
    token = _context.set({**_context.get(), **_clean(fields)})
    try:
        yield _context.get()
    finally:
        _context.reset(token)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def _clean(fields: dict[str, Any]) -> dict[str, str]:
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    return {k: str(v)[:200] for k, v in fields.items() if v not in (None, "")}


# ── Scrubbing ──────────────────────────────────────────────────────────────────────────────
HIDDEN = "[oculto]"
_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"(?i)\b(authorization)([\"']?\s*[:=]\s*[\"']?)[^\"'\n,}]+"), r"\1\2" + HIDDEN),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + HIDDEN),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), HIDDEN),  # a JWT
    (re.compile(r"(?i)\b(client_secret|password|passwd|secret|access_token|refresh_token|id_token|token|sig|"
                r"instrumentationkey)([\"']?\s*[=:]\s*[\"']?)[^&\s\"';,}]+"), r"\1\2" + HIDDEN),
    # An export's address is its own key (app.LocalExports): whoever reads it can download the file.
    (re.compile(r"/exportes/[^/\s\"']+/"), "/exportes/" + HIDDEN + "/"),
]
_EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class Scrubber:
    """Removes secrets (tokens, passwords, the configured secrets themselves) and email addresses."""

    def __init__(self, secrets: Iterable[str] = (), allowed_emails: Iterable[str] = ()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.allowed_emails = {e.lower() for e in allowed_emails if e}

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return _EMAIL.sub(lambda m: m[0] if m[0].lower() in self.allowed_emails else "[correo]", text)


class ScrubFilter(logging.Filter):
    """Rewrites each record once, before any handler formats it: message, arguments and traceback."""

    def __init__(self, scrubber: Scrubber):
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_claqueta_scrubbed", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.scrubber(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrubber(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrubber(record.stack_info)
        record._claqueta_scrubbed = True
        return True


class ContextFilter(logging.Filter):
    """Copies the context into the record where it is created (a handler may format it elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "claqueta"):
            record.claqueta = current_context()
        return True


# ── Formatters ─────────────────────────────────────────────────────────────────────────────
class JsonFormatter(logging.Formatter):
    """ts, level, logger, message, the context fields, the trace ids when a span is active, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "claqueta", None) or current_context())
        entry.update(_trace_ids())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "claqueta", None) or current_context()
        if context:
            head, sep, tail = line.partition("\n")
            line = head + " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]" + sep + tail
        return line


def _trace_ids() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api comes with msgraph's kiota
        return {}
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}


# ── Set-up ─────────────────────────────────────────────────────────────────────────────────
def scrubber_for(settings) -> Scrubber:
    secrets = [settings.app_password.get_secret_value(), settings.graph_client_secret.get_secret_value(),
               settings.graph_static_token.get_secret_value(), settings.scheduler_token.get_secret_value(),
               settings.applicationinsights_connection_string.get_secret_value()]
    return Scrubber(secrets, allowed_emails=[settings.office_mailbox])


def configure(settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """The root logger writes one line per record to stderr: JSON (CLAQUETA_LOG_FORMAT, json outside local mode)
    or text, at CLAQUETA_LOG_LEVEL. Calling it again replaces the handler it added before."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_claqueta", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._claqueta = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.logs_as_json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    protect_handlers(scrubber_for(settings))
    return handler


def protect_handlers(scrubber: Scrubber, logger: logging.Logger | None = None) -> None:
    """Give every handler of the root logger (also those added later, e.g. by telemetry) the two filters."""
    for handler in (logger or logging.getLogger()).handlers:
        for existing in [f for f in handler.filters if isinstance(f, (ScrubFilter, ContextFilter))]:
            handler.removeFilter(existing)
        handler.addFilter(ContextFilter())
        handler.addFilter(ScrubFilter(scrubber))
