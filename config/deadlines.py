"""Loads the deadline configuration (config/deadlines.yaml): lead times per piece type and days per step."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator

from procedure.definition import PROCEDURE


class Deadlines(BaseModel):
    lead_time: dict[str, int] = Field(default_factory=lambda: {"A": 25, "B": 12, "default": 12})
    step_days: dict[str, int] = Field(default_factory=lambda: {"default": 2})
    # Reminders (issue 5): working days overdue before the OCOIM head is told, and the Lima hour from
    # which the morning's reminders and the coordinator's digest go out.
    escalate_after_days: int = Field(3, ge=1)
    reminder_hour: int = Field(8, ge=0, le=23)

    @field_validator("step_days")
    @classmethod
    def _known_steps(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(k for k in value if k != "default" and k not in PROCEDURE)
        if unknown:
            raise ValueError(f"pasos desconocidos en step_days: {', '.join(unknown)}")
        if any(v < 0 for v in value.values()):
            raise ValueError("los plazos no pueden ser negativos")
        return value

    def days_for(self, step_id: str) -> int:
        return self.step_days.get(step_id, self.step_days.get("default", 2))


def load_deadlines(path: Path) -> Deadlines:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return Deadlines.model_validate(data or {})
