"""The API's error table covers every error the package defines, with one body shape."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import otel_ai
from otel_ai.api.errors import ERROR_TABLE, error_kind, rule_for, status_for
from otel_ai.errors import (
    DetectorError,
    InvalidParameter,
    NotFound,
    OtelAiError,
    OverloadedError,
    StorageError,
    Unauthorized,
)
from otel_ai.llm.errors import AllProvidersFailed, AuthFailed, InvalidRequest, RateLimited
from otel_ai.pipeline.spool import SpoolFull

SKIP = ("otel_ai.__main__", "otel_ai.ingest.proto_gen")


def _all_subclasses(cls: type[OtelAiError]) -> set[type[OtelAiError]]:
    out: set[type[OtelAiError]] = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


@pytest.fixture(scope="module")
def every_error() -> list[type[OtelAiError]]:
    """Every OtelAiError subclass of the package (all its modules imported first)."""
    for mod in pkgutil.walk_packages(otel_ai.__path__, "otel_ai."):
        if not mod.name.startswith(SKIP):
            importlib.import_module(mod.name)
    found = sorted(_all_subclasses(OtelAiError), key=lambda c: f"{c.__module__}.{c.__qualname__}")
    return [c for c in found if c.__module__.startswith("otel_ai.")]


def test_every_error_class_maps_to_a_status(every_error: list[type[OtelAiError]]) -> None:
    assert {InvalidParameter, SpoolFull, AllProvidersFailed, RateLimited} <= set(every_error)
    assert len(every_error) >= 20
    for cls in every_error:
        rule = rule_for(cls)
        assert 400 <= rule.status < 600, cls
        assert rule.retryable_status is None or 500 <= rule.retryable_status < 600, cls
        kind = error_kind(cls.__new__(cls))
        assert kind and kind == kind.lower() and " " not in kind, (cls, kind)


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidParameter("start", "not a time"), 400, "invalid_parameter"),
        (InvalidRequest("task: unknown task 'x'"), 400, "invalid_request"),
        (Unauthorized("missing or invalid bearer token"), 401, "unauthorized"),
        (NotFound("trace 00 not found"), 404, "not_found"),
        (OverloadedError("queue full", retry_after=3), 503, "overloaded_error"),
        (SpoolFull("spool full"), 503, "spool_full"),
        (StorageError("connection refused", retryable=True), 503, "storage_error"),
        (StorageError("bad column", retryable=False), 500, "storage_error"),
        (AllProvidersFailed("all providers failed"), 503, "all_providers_failed"),
        (AuthFailed("401 from the provider"), 500, "auth_failed"),
        (DetectorError("not fitted"), 500, "detector_error"),
        (OtelAiError("the LLM manager is disabled", retryable=True), 503, "otel_ai_error"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_status_and_kind(error: OtelAiError, status: int, kind: str) -> None:
    assert status_for(error) == status
    assert error_kind(error) == kind


def test_the_table_names_only_error_classes() -> None:
    assert OtelAiError in ERROR_TABLE
    assert all(issubclass(cls, OtelAiError) for cls in ERROR_TABLE)
