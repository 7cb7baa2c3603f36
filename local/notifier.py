"""Notifications on the embedded default: one JSON line per message, for tests and for running without Teams."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

from local.clock import SystemClock
from services.ports import Clock, Unreachable


class LogNotifier:
    """Appends each notification to a JSON Lines file; ids in `unreachable` raise Unreachable, as Teams would
    for someone who never talked to the bot."""

    def __init__(self, path: str | Path, *, unreachable: Iterable[str] = (),
                 clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.unreachable = set(unreachable)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()

    async def notify(self, person_id: str, message: dict) -> dict:
        if person_id in self.unreachable:
            raise Unreachable(person_id)
        entry = {"id": uuid.uuid4().hex, "at": self._clock.now().isoformat(), "person_id": person_id,
                 "message": message}
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return {"id": entry["id"]}

    def entries(self) -> list[dict]:
        """Everything notified so far, oldest first."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
