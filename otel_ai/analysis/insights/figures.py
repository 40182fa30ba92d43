"""The figure rule of the validator: every number a claim states must be a figure of the
evidence it cites.

A stated number (with its unit, when it has one: ``ms``, ``s``, ``%``, ``x``, ``calls``,
``req/min`` …) passes when it equals, within the rounding the claim shows, one of the cited
items' observed or baseline values (converted between time units and between a ratio and a
percentage), a figure derived from them (observed / baseline as ``x`` or ``%``, the change in
``%``, the difference), a ratio of two cited figures of the same kind, or a number written in
the cited evidence's own text. Numbers inside names are not figures: text in backticks or
quotes, timestamps, versions, hex ids and tokens glued to letters (``p95``, ``5xx``, ``v1``)
are skipped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

Figure = tuple[Any, Any, str]  # (observed, baseline, unit) of one evidence item

_SKIP = [
    re.compile(r"`[^`\n]{0,160}`"),
    re.compile(r"(?<!\w)'[^'\n]{0,200}'(?!\w)"),
    re.compile(r"(?<!\w)\"[^\"\n]{0,200}\"(?!\w)"),
    re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+)?(?:Z|[+-]\d{2}:?\d{2})?"),  # timestamps
    re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b"),  # times of day
    re.compile(r"\b[0-9a-f]{12,}\b", re.I),  # trace / span / insight ids
    re.compile(r"\bv?\d+(?:\.\d+){2,}[\w.+-]*"),  # versions
]
_UNIT = (
    r"%|percent\b|per ?cent\b|x\b|\u00d7|times\b|-?fold\b|ms\b|milliseconds?\b|µs\b|us\b|ns\b|"
    r"s\b|secs?\b|seconds?\b|min(?:utes?)?\b|h\b|hours?\b|"
    r"req(?:uests)?/(?:s|sec|min)\b|rps\b|rpm\b|/s\b|/min\b|per (?:second|minute)\b|"
    r"calls?\b|spans?\b|traces?\b|requests?\b|errors?\b|instances?\b|messages?\b|edges?\b|"
    r"attempts?\b|retries\b|retry\b|queries\b|query\b|statements?\b|services?\b"
)
_NUMBER = re.compile(
    r"(?<![\w.\-/#:])[+\-\u2212]?(\d{1,3}(?:[,\u202f\u00a0]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+)"
    r"(?:\s?(" + _UNIT + r")|(?!\w|\.\d))",
    re.I,
)
_TIME = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3, "min": 6e4, "h": 3.6e6}
_RATE = {"s": 1.0, "min": 1 / 60}


def _family(unit: str) -> tuple[str, float]:
    """``(family, scale to the family's canonical unit)``; family ``""`` is unitless."""
    u = unit.strip().lower()
    if not u:
        return "", 1.0
    if u in ("%", "percent", "per cent", "percentage"):
        return "percent", 0.01
    if u in ("ratio", "share", "fraction"):
        return "ratio", 1.0
    if u in ("x", "\u00d7", "times", "fold", "-fold"):
        return "mult", 1.0
    if u in ("rps", "req/s", "req/sec", "requests/s", "requests/sec", "/s", "per second"):
        return "rate", 1.0
    if u in ("rpm", "req/min", "requests/min", "/min", "per minute"):
        return "rate", _RATE["min"]
    for word, scale in (
        ("millisecond", 1.0),
        ("second", 1e3),
        ("sec", 1e3),
        ("minute", 6e4),
        ("hour", 3.6e6),
    ):
        if u.startswith(word):
            return "time", scale
    if u in _TIME:
        return "time", _TIME[u]
    return "count", 1.0


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        try:
            v = float(str(v))
        except (TypeError, ValueError):
            return None
    f = float(v)
    return abs(f) if math.isfinite(f) else None


def candidates(figures: Iterable[Figure]) -> dict[str, set[float]]:
    """Every value a claim may state, per family, in canonical units (ms, fraction, per second)."""
    out: dict[str, set[float]] = {k: set() for k in ("", "percent", "ratio", "mult", "rate", "time", "count")}
    by_family: dict[str, list[float]] = {}
    for obs, base, unit in figures:
        fam, scale = _family(unit)
        o, b = _num(obs), _num(base)
        for v in (o, b):
            if v is None:
                continue
            out[fam].add(v * scale)
            by_family.setdefault(fam, []).append(v * scale)
            if fam in ("ratio", "mult"):
                out["percent"].add(v)  # 0.62 ratio is 62 %; 1.3x is 130 %
        if o is not None and b is not None:
            out[fam].add(abs(o - b) * scale)  # "120 ms more"
            if b:
                out["mult"].add(o / b)
                out["percent"].update((o / b, abs(o - b) / b))
            if o:
                out["mult"].add(b / o)
                out["percent"].add(b / o)
    for values in by_family.values():  # a share of one cited figure in another
        vs = sorted(set(values))[:8]
        for a in vs:
            for b in vs:
                if b and a != b:
                    out["percent"].add(a / b)
                    out["mult"].add(a / b)
    return out


def _close(written: str, value: float, candidate: float) -> bool:
    """``value`` (as ``written``) is ``candidate`` rounded the way the claim shows it."""
    mant, _, exp = written.lower().partition("e")
    mant = mant.replace(",", "").replace("\u202f", "").replace("\u00a0", "")
    place = 10.0 ** -(len(mant.split(".")[1]) if "." in mant else 0) * 10.0 ** int(exp or 0)
    diff = abs(value - candidate)
    if value == 0:  # "0 errors" is a figure only when the evidence shows (about) none
        return diff < 0.5 * place
    if diff <= 0.5 * place * (1 + 1e-9) or diff <= 0.005 * abs(candidate):
        return True
    zeros = len(mant) - len(mant.rstrip("0")) if "." not in mant and mant.strip("0") else 0
    return zeros > 0 and diff <= 0.5 * 10.0**zeros * place and diff <= 0.1 * abs(candidate)


def _matches(written: str, unit: str, cands: dict[str, set[float]]) -> bool:
    value = float(written.replace(",", "").replace("\u202f", "").replace("\u00a0", ""))
    fam, scale = _family(unit)
    pools: list[tuple[set[float], float]]  # (canonical values, canonical → written units)
    if fam == "":
        pools = [(cands[k], 1.0) for k in cands] + [(cands["percent"] | cands["ratio"], 100.0),
                                                   (cands["time"], 1e-3)]  # fmt: skip
    elif fam == "percent":
        pools = [(cands["percent"] | cands["ratio"], 100.0)]
    elif fam == "mult":
        pools = [(cands["mult"] | cands["ratio"] | cands["count"] | cands[""], 1.0)]
    elif fam == "count":
        pools = [(cands["count"] | cands[""], 1.0)]
    else:
        pools = [(cands[fam], 1.0 / scale), (cands[""], 1.0)]
    return any(_close(written, value, c * factor) for pool, factor in pools for c in pool)


def stated(text: str) -> list[tuple[str, str]]:
    """The numbers ``text`` states as figures: ``[(number as written, unit or "")]``."""
    for pattern in _SKIP:
        text = pattern.sub(" ", text)
    return [(m.group(1), m.group(2) or "") for m in _NUMBER.finditer(text)]


def unsupported(text: str, figures: Sequence[Figure], evidence_text: str = "") -> str | None:
    """The first number of ``text`` that no cited figure supports (``"250 ms"``), else ``None``."""
    found = stated(text)
    if not found:
        return None
    cands = candidates(figures)
    # numbers written in the evidence's own text (quotes included), with their units
    quoted = {
        (m.group(1).replace(",", ""), _family(m.group(2) or "")) for m in _NUMBER.finditer(evidence_text)
    }
    for written, unit in found:
        fam = _family(unit)
        if any(n == written.replace(",", "") and (f == fam or "" in (f[0], fam[0])) for n, f in quoted):
            continue
        if _matches(written, unit, cands):
            continue
        return f"{written} {unit}".strip()
    return None
