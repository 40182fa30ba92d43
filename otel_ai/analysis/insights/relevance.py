"""Which evidence a free question is about: its terms against the window's entities and kinds.

A question names entities (a service, an operation or route fragment, a database, an edge's
endpoint — matched word by word against the parts of entity ids, ``products`` ≈ ``product``)
and intents (``slow``/``latency``/``p95`` → latency kinds, ``error``/``fail`` → error kinds,
``retry``, ``queue``/``lag``, ``N+1``/``query``/``database`` …). An item is relevant when it is
about an entity the question names (intent-matching ones first) or, when the question names no
known entity, when its kind matches an intent; a question with neither is general and every
item is relevant. Names the question gives (``billing queue``, ``payments-service``, the subject
of a complaint: ``is checkout slow``) that the window has never seen are reported so the answer
can say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LATENCY = frozenset({"critical_path_hotspot", "slow_query", "n_plus_one", "sequential_calls", "fan_out",
                     "queue_lag", "chatty_dependency", "anomaly:latency", "topology:latency"})  # fmt: skip
ERRORS = frozenset({"error_propagation", "retry_storm", "anomaly:errors", "topology:errors"})
_INTENTS: list[tuple[re.Pattern[str], frozenset[str]]] = [
    (re.compile(r"\b(slow\w*|latenc\w*|lag\w*|p\d\d|duration|fast\w*|speed|time\w*|hang\w*|"
                r"bottleneck|critical.?path|performance|takes? long)\b"), LATENCY),
    (re.compile(r"\b(errors?|erroring|fail\w*|5xx|50\d|exceptions?|crash\w*|broken|down|outages?)\b"), ERRORS),
    (re.compile(r"\b(retr\w*|resend\w*|amplif\w*|storm)\b"), frozenset({"retry_storm"})),
    (re.compile(r"\b(queues?|lag\w*|kafka|consumers?|producers?|topics?|backlog|messag\w*)\b"),
     frozenset({"queue_lag"})),
    (re.compile(r"\b(n\s?\+\s?1|quer\w*|database|db|sql|statements?|index\w*)\b"),
     frozenset({"n_plus_one", "slow_query"})),
    (re.compile(r"\b(cycl\w*|circular)\b"), frozenset({"dependency_cycle"})),
    (re.compile(r"\b(fan.?out|concurren\w*)\b"), frozenset({"fan_out"})),
    (re.compile(r"\b(sequential\w*|parallel\w*|serial\w*)\b"), frozenset({"sequential_calls"})),
    (re.compile(r"\b(chatty|calls per request|too many calls)\b"), frozenset({"chatty_dependency"})),
    (re.compile(r"\b(deploy\w*|release\w*|new dependenc\w*|vanish\w*|disappear\w*|missing|stopped calling)\b"),
     frozenset({"new_dependency", "vanished_dependency", "anomaly"})),
    (re.compile(r"\b(encoding|json|protobuf|protocol|otlp|exporters?)\b"), frozenset({"encoding_drift"})),
    (re.compile(r"\b(sdks?|language|instrumentation)\b"), frozenset({"sdk_drift"})),
    (re.compile(r"\b(single.?point|spof|redundan\w*|replica\w*|instances?|availability)\b"),
     frozenset({"single_point_of_failure"})),
    (re.compile(r"\b(anomal\w*|unusual|weird|strange)\b"), frozenset({"anomaly"})),
]  # fmt: skip
_STOP_WORDS = (
    "a an and any are as at be been but by can could did do does for from get got has have how i in is it its "
    "me my no not of on or our put post delete patch should so than that the their them then there these this "
    "to too us very was we were what when where which who why will with would you your http https api v1 v2 id "
    "service services svc server db database app call calls request requests slow fast error errors fail "
    "failing failed latency much many more most all my everything anything something it site system "
    "website page pages application whole platform things stuff"
)  # fmt: skip
_STOP = frozenset(_STOP_WORDS.split())
_COMPONENT = (
    r"service|svc|queue|topic|db|database|api|server|worker|gateway|backend|cache|cluster|broker|store"
)
_NAMED = re.compile(r"\b([a-z][\w.-]*)\s+(?:" + _COMPONENT + r")s?\b", re.I)
# The subject of a complaint: "is checkout slow", "are orders failing", "latency of checkout".
_SUBJECT = [
    re.compile(r"\b(?:is|are|was|were|does|do|did|has|have)\s+(?:the\s+|my\s+|our\s+|a\s+)?([a-z][\w./-]*)\s+"
               r"(?:(?:so|too|very|really|still|always|getting|being)\s+)?"
               r"(?:slow\w*|fail\w*|error\w*|down|broken|lagg\w*|timing out|crash\w*|latent|erroring)\b"),
    re.compile(r"\b(?:latency|slowness|errors?|failures?|lag|p\d\d|retries|timeouts?)\s+(?:of|in|from|on|at)\s+"
               r"(?:the\s+|my\s+|our\s+)?([a-z][\w./-]*)"),
]  # fmt: skip
_SHAPED = re.compile(
    r"`([^`\n]{1,80})`|\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+|[a-z][a-z0-9]*(?:-[a-z0-9]+)*-(?:"
    + _COMPONENT
    + r"))\b",
    re.I,
)


@dataclass(frozen=True)
class Question:
    terms: frozenset[str]  # the question's content words, lower case
    intents: frozenset[str]  # kinds (and ``anomaly:latency``-style tags) the wording points at
    names: frozenset[str]  # entity-like names the question gives (known or not)


def parts(name: str) -> set[str]:
    """The words of an entity id: ``checkout:GET /products/{id}`` → checkout, products."""
    return {p for p in re.split(r"[^a-z0-9]+", name.lower()) if len(p) >= 2 and p not in _STOP}


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 4 and long_.startswith(short) and len(long_) - len(short) <= 3


def parse(question: str) -> Question:
    low = question.lower()
    intents: set[str] = set()
    for pattern, kinds in _INTENTS:
        if pattern.search(low):
            intents |= kinds
    names = {
        m.group(1) for m in _NAMED.finditer(low) if m.group(1) not in _STOP and not _is_intent(m.group(1))
    }
    names |= {(m.group(1) or m.group(2)).strip() for m in _SHAPED.finditer(low)} - {""}
    names |= {m.group(1) for p in _SUBJECT for m in p.finditer(low) if m.group(1) not in _STOP}
    names = {n for n in names if not _is_intent(n)}
    terms = {w for w in re.findall(r"[a-z0-9][a-z0-9]*", low) if len(w) >= 2 and w not in _STOP}
    return Question(frozenset(terms), frozenset(intents), frozenset(n for n in names if n))


def _is_intent(word: str) -> bool:
    return any(p.fullmatch(word) for p, _ in _INTENTS)


def mentions(q: Question, entities: Iterable[str]) -> bool:
    """The question names one of ``entities`` (whole id, or one of its words)."""
    for ent in entities:
        if ent.lower() in q.names:
            return True
        if any(_same(t, p) for t in q.terms for p in parts(ent)):
            return True
    return False


def unseen(q: Question, known: Iterable[str]) -> list[str]:
    """Names the question gives that no known entity matches."""
    known_parts = set().union(*(parts(k) for k in known)) if known else set()
    out = []
    for name in sorted(q.names):
        words = parts(name) or {name}
        if not any(_same(w, k) for w in words for k in known_parts):
            out.append(name)
    return out


def score(q: Question, entities: Iterable[str], tags: Iterable[str]) -> tuple[int, int]:
    """``(entity match, intent match)`` of one item, each 0 or 1."""
    return int(mentions(q, entities)), int(bool(q.intents & set(tags)))
