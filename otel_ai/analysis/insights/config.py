"""Configuration of the insights room (YAML section ``insights``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from otel_ai.analysis.insights.detectors.config import DetectorsConfig


class ScoringConfig(BaseModel):
    """How code turns a finding's impact into severity and confidence (see ``scoring.py``)."""

    model_config = ConfigDict(extra="forbid")

    # Extra latency per affected request that uses the whole entry-point latency budget.
    latency_budget_ms: float = Field(default=500.0, gt=0)
    # Share of entry errors explained that uses the whole error budget.
    error_budget_share: float = Field(default=0.5, gt=0, le=1)
    # Visible this long within the window → full persistence weight.
    persist_s: float = Field(default=300.0, gt=0)
    # Affected traces at which the sample stops lowering confidence.
    confident_traces: int = Field(default=20, ge=1)


class InsightsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # The scheduled job: every interval_s over the last lookback_s.
    interval_s: int = Field(default=300, ge=10)
    lookback_s: int = Field(default=900, ge=60)
    # Lifecycle: an open insight missing from this many consecutive runs is resolved; an insight
    # not seen for expire_after_s is expired (a later sighting starts a new insight).
    resolve_after_runs: int = Field(default=3, ge=1)
    expire_after_s: int = Field(default=86_400, ge=60)
    # The LLM step: narrate with the manager (false: the template narrative only, no LLM call).
    narrate: bool = True
    max_tokens: int = Field(default=600, ge=64, le=8192)
    # With no model configured but the embedded one, narrate with it (true) or with the rules
    # template (false: the 135M embedded model took 60-120 s per narrative here and its output
    # rarely passed the schema, so every run paid that for the template anyway).
    embedded_narrative: bool = False
    # Narratives kept in memory by (prompt version, route, evidence hash); also kept on the record.
    cache_entries: int = Field(default=512, ge=0, le=100_000)
    # At most this many insights narrated per run (most severe first); the rest get the template.
    max_narrated_per_run: int = Field(default=20, ge=0, le=1000)
    # Ask: at most this many insights (most severe first) go into the question's context.
    ask_max_insights: int = Field(default=12, ge=1, le=100)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig)
