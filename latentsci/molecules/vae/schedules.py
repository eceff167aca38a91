"""KL weight schedules for beta-VAE training (linear warm-up, optionally cyclical)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KLSchedule(BaseModel):
    """beta rises linearly from `start` to `beta` over `warmup_steps` (repeating every `cycle`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    beta: float = Field(default=0.1, ge=0)
    start: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=2000, ge=0)
    cycle_steps: int | None = Field(default=None, gt=0)
    free_bits: float = Field(default=0.0, ge=0)

    def at(self, step: int) -> float:
        """The KL weight at an optimiser step."""
        if self.cycle_steps:
            step %= self.cycle_steps
        if self.warmup_steps == 0 or step >= self.warmup_steps:
            return self.beta
        return self.start + (self.beta - self.start) * step / self.warmup_steps
