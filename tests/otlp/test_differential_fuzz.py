"""The C decoder and transcoder against upb and the Python path: a bounded, seeded differential fuzz.

Every mutated body must get the same verdict with and without the compiled fast paths, and an
accepted one must flatten in both decoders (see ``otel_ai/testing/fuzzing.py``). The corpus
(``tests/otlp/corpus/``) keeps the crashers and findings of the hardening work as regression
cases; ``bench/fuzz.py`` runs the same oracle for minutes (and under ASan/UBSan).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_ai.testing import fuzzing

CORPUS = sorted(fuzzing.CORPUS.iterdir())

# What the exact path decides for some of them (the rest: whatever it is, both paths agree).
EXPECTED = {
    "json-duplicate-key.json": "refused",
    "json-duplicate-unknown-key.json": "refused",
    "json-leading-zero-in-unknown-field.json": "refused",
    "json-leading-zero-in-time.json": "refused",
    "json-invalid-utf8-in-unknown-field.json": "refused",
    "json-invalid-utf8-in-unknown-key.json": "refused",
    "json-time-2^64.json": "refused",
    "json-time-not-a-number.json": "refused",
    "json-kvlist-nested-45.json": "refused",
    "json-control-char-in-unknown-field.json": "refused",
    "json-nan-literal.json": "refused",
    "json-time-2^63.json": "partial",
    "json-time-year-2300.json": "partial",
    "json-empty-key.json": "empty",
    "json-lone-surrogate-in-unknown-field.json": "refused",  # protobuf cannot hold it (no text)
    "json-time-fraction.json": "refused",
    "json-time-1e999.json": "refused",
    # found by bench/fuzz.py under ASan: protobuf's JSON parser read "name\u0000" as "name"
    "json-nul-in-key-51a2019370c4.json": "refused",
    "json-nul-in-key-a678b045ff94.json": "refused",
    "json-nul-in-key-e932e5514f85.json": "refused",
    "json-nul-in-skipped-key.json": "refused",
    "json-nul-in-unknown-object-key.json": "refused",
    # found under ASan: upb reads it, the C reader called it malformed (now: the next decoder)
    "pb-upb-reads-the-c-reader-does-not.pb": "ok",  # found by bench/fuzz.py: int(inf) raised OverflowError (a 500)
    "pb-start-2^63.pb": "partial",
    "pb-start-2^64-1.pb": "partial",
    "pb-start-0.pb": "partial",
    "pb-event-2^63.pb": "partial",
    "pb-kvlist-nested-40.pb": "refused",
    "pb-kvlist-nested-30.pb": "ok",
    "pb-repeated-keys.pb": "partial",  # 100 attributes > the fuzz limit of 64
}


def _kind(v: fuzzing.Verdict) -> str:
    if v.refused:
        return "refused"
    if v.rejected:
        return "partial"
    return "ok" if v.items else "empty"


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus(path: Path) -> None:
    encoding = "protobuf" if path.suffix == ".pb" else "json"
    body = path.read_bytes()
    assert fuzzing.check(encoding, body) is None
    if path.name in EXPECTED:
        with fuzzing.exact_paths():
            assert _kind(fuzzing.verdict(encoding, body)) == EXPECTED[path.name]


def test_every_corpus_entry_has_an_expectation() -> None:
    assert {p.name for p in CORPUS} - set(EXPECTED) <= {
        "json-bad-escape-in-unknown-field.json", "json-empty-key-in-span.json", "json-nul-after-number.json",
    }  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_mutations_get_the_same_verdict_on_every_path(seed: int) -> None:
    tried, findings = fuzzing.run(1500, seed)
    assert tried == 1500
    assert not findings, findings[:3]
