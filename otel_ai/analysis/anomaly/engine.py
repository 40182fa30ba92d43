"""From scored windows to anomalies: hysteresis, merging along the topology, attribution, RCA.

The same :class:`Tracker` runs live (one new window per cycle) and over a replayed range, so a
backfill evaluation exercises exactly the code that pages in production. Rules
(docs/anomaly.md): open after ``open_after`` consecutive abnormal windows; close after
``close_after`` windows below ``close_ratio x threshold``; expire after ``expire_s``. Services that
are abnormal in the same window and connected in the service graph form one component; components
that touch an existing track join it, so a fault and its propagation are ONE anomaly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.detector import WindowDetector
from otel_ai.analysis.anomaly.features import METRICS, Feature, FeatureFrame, inverse
from otel_ai.analysis.anomaly.rca import TRAFFIC, rank_root_causes
from otel_ai.analysis.anomaly.stats import StatScores
from otel_ai.timeutil import rfc3339

UP_ONLY = frozenset({"err"})


@dataclass
class Scored:
    """A frame scored by one detector: calibrated per-feature scores and per-service maxima."""

    frame: FeatureFrame
    F: np.ndarray
    expected: np.ndarray | None
    threshold: float
    model_id: str
    S: dict[str, np.ndarray] = field(default_factory=dict)
    # per service: max over the figures load cannot explain (not traffic, not latency)
    unloaded: dict[str, np.ndarray] = field(default_factory=dict)
    # per service: how many decades the strongest count test's p-value lies beyond its alarm level
    strong: dict[str, np.ndarray] = field(default_factory=dict)
    # per service: max over the windows of at most 5 minutes (no 15/30-minute count sums); what a
    # service that has just recovered is judged on (``Tracker.step``); absent = ``S``
    recent: dict[str, np.ndarray] = field(default_factory=dict)
    recent_strong: dict[str, np.ndarray] = field(default_factory=dict)  # ``strong`` over those windows

    @property
    def window_score(self) -> np.ndarray:
        return self.F.max(axis=1) if self.F.shape[1] else np.zeros(len(self.F))

    def index_of(self, window: int) -> int | None:
        i = int(np.searchsorted(self.frame.windows, window))
        return i if i < len(self.frame.windows) and self.frame.windows[i] == window else None


MARGINAL_GATE = 0.25


LATENCY_METRICS = frozenset({"p50", "p95", "p99", "self"})
LOAD_LATENCY = LATENCY_METRICS | {"slow", "self_slow", "slow_far", "self_far"}  # rises with the load
LOAD = TRAFFIC | LOAD_LATENCY  # what a flash crowd moves by itself


def score_frame(
    det: WindowDetector, frame: FeatureFrame, model_id: str, *, gate: float = MARGINAL_GATE,
    stats: StatScores | None = None, peer_edges: list[tuple[str, str]] | None = None,
    min_latency_change: float = 0.0,
) -> Scored:  # fmt: skip
    """Calibrated per-feature scores, gated by the value's own deviation.

    An autoencoder smears a fault: one broken input shifts the reconstruction of healthy
    features. A feature therefore counts only if its value alone is also unusual (squared robust
    z at least ``gate`` x its calibration quantile); this keeps the attribution and the
    root-cause ranking on the figures that really moved.
    """
    X = np.hstack([frame.X, frame.context])
    F = det.feature_scores(X)
    if gate > 0:
        F = np.where(det.marginal_scores(X) >= gate, F, 0.0)
    exp = det.expected(X) if hasattr(det, "expected") else None
    # One-sided figures: fewer errors than expected is never a problem (and Laplace smoothing makes
    # the error ratio of an error-free service fall when traffic rises, e.g. in a flash crowd).
    ref = exp if exp is not None else np.broadcast_to(det.center_, frame.X.shape)
    down = np.array([f.metric in UP_ONLY for f in frame.features], bool)
    if down.any():
        F = F.copy()
        F[:, down] = np.where(frame.X[:, down] < ref[:, down], 0.0, F[:, down])
        F = _no_errors_no_alert(frame, F)
    if min_latency_change > 0 and exp is not None:
        F = _latency_floor(frame, F, exp, min_latency_change)
    if stats is not None:
        frame, F, exp = _with_stats(frame, F, exp, stats, peer_edges or [])
    scored = Scored(frame, F, exp, float(det.threshold_), model_id)
    owners: dict[str, list[int]] = {}
    for j, f in enumerate(frame.features):
        owners.setdefault(f.owner, []).append(j)
    scored.S = {s: F[:, cols].max(axis=1) for s, cols in owners.items()}
    zero = np.zeros(len(F))
    scored.unloaded = {
        s: F[:, c].max(axis=1) if (c := [j for j in cols if frame.features[j].metric not in LOAD]) else zero
        for s, cols in owners.items()
    }
    if stats is not None and stats.short is not None:
        short = np.hstack([F[:, : F.shape[1] - stats.short.shape[1]], stats.short])
        scored.recent = {s: short[:, cols].max(axis=1) for s, cols in owners.items()}
    if stats is not None:
        scored.strong = _per_owner(stats.features, stats.excess)
        scored.recent_strong = _per_owner(stats.features, stats.short_excess)
    return scored


def _per_owner(features: list[Feature], M: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per service, the maximum of the columns it owns."""
    out: dict[str, np.ndarray] = {}
    if M is None:
        return out
    for j, f in enumerate(features):
        cur = out.get(f.owner)
        out[f.owner] = M[:, j] if cur is None else np.maximum(cur, M[:, j])
    return out


def _no_errors_no_alert(frame: FeatureFrame, F: np.ndarray) -> np.ndarray:
    """A service window without errors never alerts on its error ratio. The ratio is
    Laplace-smoothed, (errors + 1) / (n + 2), so with no errors it *rises* when traffic falls: a
    traffic drop would otherwise show "errors up" at every quiet service and take the root cause."""
    for j, f in enumerate(frame.features):
        if f.kind == "service" and f.metric == "err" and f.service in frame.volume:
            n = frame.volume[f.service]
            with np.errstate(all="ignore"):
                none = np.nan_to_num(frame.raw[:, j] * (n + 2.0) - 1.0, nan=0.0) < 0.5
            F[:, j] = np.where(none, 0.0, F[:, j])
    return F


def _latency_floor(frame: FeatureFrame, F: np.ndarray, exp: np.ndarray, change: float) -> np.ndarray:
    """Latency figures count only when they moved by more than ``change`` (relative): a busy
    service's p50 is so stable that a +10% deploy step is "significant", but it is no incident."""
    cols = np.array([f.metric in LATENCY_METRICS for f in frame.features], bool)
    if not cols.any():
        return F
    F = F.copy()
    base = np.column_stack([inverse(f.metric, exp[:, j]) for j, f in enumerate(frame.features) if cols[j]])
    with np.errstate(all="ignore"):
        ratio = frame.raw[:, cols] / np.maximum(base, 1e-9)
    small = np.nan_to_num(np.abs(np.log(ratio)), nan=0.0) < np.log1p(change)
    F[:, cols] = np.where(small, 0.0, F[:, cols])
    return F


def _with_stats(frame: FeatureFrame, F: np.ndarray, exp: np.ndarray | None, st: StatScores,
                peer_edges: list[tuple[str, str]]) -> tuple[FeatureFrame, np.ndarray, np.ndarray | None]:  # fmt: skip
    """The frame widened by the count tests' columns (values and baselines in natural units)."""
    ref = exp if exp is not None else np.full(frame.X.shape, np.nan)
    edges = sorted(set(frame.edges) | set(peer_edges))
    wide = FeatureFrame(
        frame.windows, frame.window_s, frame.features + st.features, np.hstack([frame.X, st.raw]),
        np.hstack([frame.raw, st.raw]), frame.context, frame.services, edges, frame.volume, frame.unanswered,
    )  # fmt: skip
    return wide, np.hstack([F, st.F]), np.hstack([ref, st.expected])


@dataclass
class Track:
    services: set[str]
    first: int
    last: int
    streak: int = 1
    quiet: int = 0
    opened: bool = False
    closed: bool = False
    close_reason: str = ""
    anomaly_id: str = ""
    peak: float = 0.0
    saved_peak: float = 0.0
    saved_services: int = 0
    opened_window: int = 0
    # What was said when the anomaly paged (root causes, kind, severity): later descriptions
    # keep it, so the stored answer is the one a user was alerted with (see ``describe``).
    alert_view: dict[str, Any] | None = None


def _stored_services(a: dict[str, Any]) -> set[str]:
    return set((a.get("evidence") or {}).get("services") or [a["entity"]["service"]])


class Tracker:
    """Hysteresis + topology merging over successive windows; keeps state between live cycles."""

    def __init__(self, config: AnomalyConfig) -> None:
        self.cfg = config
        self.tracks: list[Track] = []
        self.streaks: dict[str, int] = {}
        self.unloaded_streaks: dict[str, int] = {}  # the same, over the figures load cannot explain
        # service -> the window its last anomaly recovered in. Until the longest count window has
        # rolled past it, the service is judged on its short windows only: a 15/30-minute sum
        # still holds the evidence that anomaly already paged on, and one routine event would
        # make it "fresh" again and page a second time on a fault that is over.
        self.recovered: dict[str, int] = {}

    def restore(self, anomalies: list[dict[str, Any]]) -> int | None:
        """Re-create the open tracks of stored (open, live) anomalies after a restart.

        Their services keep a full streak, so an anomaly that is still going on continues (and
        is not opened a second time); one that ended while the daemon was down closes after
        ``close_after`` quiet windows as usual. Returns the last window the stored anomalies saw
        (unix seconds), so the caller can replay the windows it missed.
        """
        last_seen: int | None = None
        for a in anomalies:
            ev = a.get("evidence") or {}
            services = _stored_services(a)
            first = int(_parse(ev.get("first_alert_window") or a["opened_at"]))
            last = int(_parse(ev["last_window"])) if ev.get("last_window") else first
            opened_window = int(_parse(ev["alerted_at"])) if ev.get("alerted_at") else last
            t = Track(services=services, first=first, last=last, streak=self.cfg.open_after, opened=True,
                      anomaly_id=str(a["id"]), peak=float(a.get("score") or 0.0),
                      opened_window=opened_window - int(ev.get("window_s") or 0))  # fmt: skip
            t.saved_peak, t.saved_services = t.peak, len(services)
            t.alert_view = {"root_causes": a.get("root_causes", []), "kind": ev.get("kind"),
                            "severity": a.get("severity")}  # fmt: skip
            self.tracks.append(t)
            for s in services:
                self.streaks[s] = max(self.streaks.get(s, 0), self.cfg.open_after)
            last_seen = max(last_seen or last, last)
        return last_seen

    def restore_recovered(self, anomalies: list[dict[str, Any]]) -> None:
        """Re-arm the cool-down of services whose stored (live) anomalies recovered recently, so a
        restart does not let a long window that still holds their evidence page a second time."""
        for a in anomalies:
            ev = a.get("evidence") or {}
            if ev.get("close_reason") != "recovered" or not a.get("closed_at"):
                continue
            # closed_at ends its last abnormal window; it closed ``close_after`` quiet windows on
            # (the window ``step`` counts the cool-down from, when those windows were consecutive)
            w = int(ev.get("window_s") or 0)
            at = int(_parse(a["closed_at"])) - w + self.cfg.close_after * w
            for s in _stored_services(a):
                self.recovered[s] = max(self.recovered.get(s, at), at)

    @property
    def cool_down_s(self) -> int:
        """How long after a recovery a service is judged on its short windows only."""
        return max(self.cfg.resolutions_s)

    def step(self, scored: Scored, i: int) -> list[tuple[str, Track]]:
        """Advance by window ``i`` of ``scored``; returns ``[(event, track)]`` with event open|update|close."""
        cfg, thr, w = self.cfg, scored.threshold, scored.frame.window_s
        win = int(scored.frame.windows[i])
        # A service is abnormal once it has been above threshold for ``open_after`` consecutive
        # windows: noise that hops between services every window never opens anything.
        cooling = {s for s, at in self.recovered.items() if win - at < self.cool_down_s}
        for s, v in scored.S.items():
            if s in cooling:
                v = scored.recent.get(s, v)
            self.streaks[s] = self.streaks.get(s, 0) + 1 if v[i] > thr else 0
        for s, v in scored.unloaded.items():
            self.unloaded_streaks[s] = self.unloaded_streaks.get(s, 0) + 1 if v[i] > thr else 0
        # Evidence far beyond the alarm level (an exact test's p-value ``open_strong`` decades
        # below it) confirms itself: such a service is abnormal from its first window.
        strong = {s for s, v in scored.strong.items()
                  if cfg.open_strong > 0 and self.streaks.get(s, 0) > 0
                  and float(scored.recent_strong.get(s, v)[i] if s in cooling else v[i]) >= cfg.open_strong}  # fmt: skip
        seen = {s: self.streaks[s] for s in strong}  # windows actually above threshold
        for s in strong:
            self.streaks[s] = max(self.streaks[s], cfg.open_after)
        abnormal = {s for s, n in self.streaks.items() if n >= cfg.open_after}
        adj = _two_hop(scored.frame.edges)
        events: list[tuple[str, Track]] = []
        matched: set[int] = set()
        for comp in _components(abnormal, adj):
            near = comp | {n for s in comp for n in adj.get(s, ())}
            hits = [t for t in self.tracks if not t.closed and t.services & near]
            if any(self.unloaded_streaks.get(s, 0) >= cfg.open_after for s in comp):
                # A traffic note (a flash crowd) does not swallow a fault that follows it: figures
                # load cannot explain (errors, failed calls, re-sends, lag, ...) start an anomaly
                # of their own; latency that rises with the load stays with the note. Like any
                # opening, only after ``open_after`` windows in a row: one noisy window of a
                # busier service's error ratio split a second note off a flash crowd.
                hits = [t for t in hits if not (t.alert_view and t.alert_view.get("severity") == "info")]
            if not hits:
                run = min(cfg.open_after, max(seen.get(s, cfg.open_after) for s in comp))
                first = win - (run - 1) * w
                track = Track(services=set(comp), first=first, last=win, streak=cfg.open_after)
                self.tracks.append(track)
            else:
                track = min(hits, key=lambda t: (not t.opened, t.first))
                for other in hits:
                    if other is not track:
                        track.services |= other.services
                        track.first = min(track.first, other.first)
                        other.closed, other.close_reason = True, "merged"
                        if other.opened:  # already stored: close it, pointing at the survivor
                            other.close_reason = f"merged into {track.anomaly_id or 'a wider anomaly'}"
                            events.append(("close", other))
                track.services |= comp
                if track.last == win - w or track.opened:
                    track.streak += track.last != win
                else:
                    track.first, track.streak = win, 1
                track.last, track.quiet = win, 0
            if comp & strong:
                track.streak = max(track.streak, cfg.open_after)
            matched.add(id(track))
            track.peak = max(track.peak, max(float(scored.S[s][i]) for s in comp) / thr)
            if not track.opened and track.streak >= cfg.open_after:
                track.opened, track.opened_window = True, win
                events.append(("open", track))
            elif track.opened and (
                track.peak > 1.2 * track.saved_peak
                or len(track.services) > track.saved_services
                or win - track.opened_window <= cfg.rerank_s  # young: the root cause may still move
            ):
                events.append(("update", track))
        for t in self.tracks:
            if t.closed or id(t) in matched:
                continue
            if not t.opened:
                t.closed, t.close_reason = True, "not confirmed"
                continue
            level = max((float(scored.S[s][i]) for s in t.services if s in scored.S), default=0.0)
            if level < cfg.close_ratio * thr:
                t.quiet += 1
            if t.quiet >= cfg.close_after:
                t.closed, t.close_reason = True, "recovered"
                events.append(("close", t))
                self.recovered.update(dict.fromkeys(t.services, win))
        for t in self.tracks:
            if t.opened and not t.closed and win - t.first >= cfg.expire_s:
                t.closed, t.close_reason = True, "expired"
                events.append(("close", t))
        self.tracks = [t for t in self.tracks if not t.closed]
        return events


def _two_hop(edges: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Undirected adjacency within two hops: services sharing a caller or callee are related even
    when the service between them is not (yet) abnormal (Dynatrace-style topology merging)."""
    adj: dict[str, set[str]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    return {n: (nb | {m for x in nb for m in adj.get(x, ())}) - {n} for n, nb in adj.items()}


def _components(nodes: set[str], adj: dict[str, set[str]]) -> list[set[str]]:
    out: list[set[str]] = []
    left = set(nodes)
    while left:
        stack, comp = [left.pop()], set()
        while stack:
            n = stack.pop()
            comp.add(n)
            for m in adj.get(n, ()):
                if m in left:
                    left.discard(m)
                    stack.append(m)
        out.append(comp)
    return out


def _iso(ts: int) -> str:
    return rfc3339(datetime.fromtimestamp(ts, UTC))


def _parse(text: str) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def describe(
    track: Track, scored: Scored, *, closed: bool, top_k: int = 5, open_after: int = 2, rerank_s: int = 0
) -> dict[str, Any]:
    """The API shape of one anomaly (the contract in docs/anomaly.md), built from the scored windows.

    Root causes are re-ranked while the anomaly is at most ``rerank_s`` old (a busy caller's
    longer count window can cross before the failing callee's own figures do), then kept."""
    fr, thr, w = scored.frame, scored.threshold, scored.frame.window_s
    i0 = scored.index_of(track.first) or 0
    i1 = scored.index_of(track.last)
    i1 = len(fr.windows) - 1 if i1 is None else i1
    svcs = sorted(track.services)
    known = [scored.S[s] for s in svcs if s in scored.S]
    level = np.max(known, axis=0) if known else np.zeros(len(fr.windows))
    onset = i0
    while onset > 0 and level[onset - 1] > 0.5 * thr:
        onset -= 1  # "since when": walk back while the score stays above half the threshold
    span = slice(onset, i1 + 1)
    peak_i = onset + int(np.argmax(level[span]))
    cols = [j for j, f in enumerate(fr.features) if f.owner in track.services]
    order = sorted(cols, key=lambda j: -scored.F[peak_i, j])
    feats = [_feature(fr.features[j], j, peak_i, scored) for j in order[:top_k] if scored.F[peak_i, j] > 0]
    top = fr.features[order[0]] if order else Feature("service", svcs[0] if svcs else "", "rate")
    # Root cause over every service of the window range, not only the track's. A figure counts
    # only when it stays abnormal for ``open_after`` consecutive windows (the paging rule), so a
    # one-window blip during a flash crowd does not turn traffic into a "cause".
    peak_by_svc = {s: float(v[span].max()) for s, v in scored.S.items()}
    k = max(1, min(open_after, i1 + 1 - onset))
    top_metrics: dict[str, list[tuple[str, float]]] = {}
    dropped: dict[str, list[tuple[str, float]]] = {}  # caller → callees it reaches less often
    retrying: dict[str, list[str]] = {}  # caller → callees it re-sends calls to
    for j, f in enumerate(fr.features):
        if f.owner in track.services and _run(scored.F[span, j] > thr) >= k:
            at = onset + int(np.argmax(scored.F[span, j]))
            signed = _signed(scored, at, j)
            top_metrics.setdefault(f.owner, []).append((f.metric, signed))
            if f.kind == "edge" and f.metric == "cpr" and signed < 0:
                dropped.setdefault(f.service, []).append((f.target, signed))
            if f.metric == "retries" and signed > 0:
                retrying.setdefault(f.service, []).append(f.target)
    # A callee that refused calls (client errors with no server span) is unreachable, and explains
    # why the calls after it were skipped too. Only refusals make a callee a suspect: calls that
    # were merely skipped (fewer calls per request, no refusals) follow from a failure elsewhere.
    refused: dict[tuple[str, str], float] = {}
    for (c, t), v in fr.unanswered.items():
        calls = float(fr.volume.get(c, np.zeros(len(fr.windows)))[span].sum())
        if c in track.services and float(v[span].sum()) >= max(5.0, 0.05 * calls):
            refused[(c, t)] = float(v[span].sum())
            if t not in {x for x, _ in dropped.get(c, [])}:
                dropped.setdefault(c, []).append((t, 0.0))
    for caller, drops in dropped.items():
        drops.sort(key=lambda d: (-refused.get((caller, d[0]), 0.0), d[1]))
    suspects = {c: [d for d in drops if (c, d[0]) in refused] for c, drops in dropped.items()}
    anomalous = set(top_metrics) or {s for s in track.services if peak_by_svc.get(s, 0.0) > thr}
    onset_by_svc = {s: onset + int(np.argmax(scored.S[s][span] > thr)) for s in anomalous}
    root = rank_root_causes(
        services=fr.services, edges=fr.edges, score=peak_by_svc, onset=onset_by_svc, anomalous=anomalous,
        top_metrics=top_metrics, threshold=thr, dropped_calls={c: d for c, d in suspects.items() if d},
        retrying=retrying,
    )  # fmt: skip
    all_metrics = {m for ms in top_metrics.values() for m, _ in ms}
    surge = bool(anomalous) and not root and all_metrics <= TRAFFIC
    if not surge and _load_induced(top_metrics):
        # More traffic everywhere, and the only other change is latency going up where traffic
        # went up: the load explains the latency (a flash crowd), so no service is the cause.
        surge, root = True, []
    score = float(level[span].max() / thr)
    severity = "info" if surge else ("critical" if score >= 3 else "warning")
    kind = "traffic_surge" if surge else _kind(top_metrics.get(str(root[0]["service"]), []) if root else [])
    latest = root
    view = track.alert_view
    young = track.opened and track.last - track.opened_window <= rerank_s and severity != "info"
    if view is None or young or (view["severity"] == "info" and severity != "info"):
        # First description (the alert), or a traffic note that turned into a real fault.
        track.alert_view = {"root_causes": root, "kind": kind, "severity": severity}
    else:  # the root cause is what paged; later windows only extend the evidence
        root, kind = view["root_causes"], view["kind"]
        if severity == "info" and view["severity"] != "info":
            severity = "warning"
    # The anomaly is about its first root cause: its strongest figure names the entity (a payment
    # error burst is "payment", not the checkout → payment edge whose client errors peaked first).
    if root:
        own = [j for j in order if fr.features[j].service == root[0]["service"] and scored.F[peak_i, j] > 0]
        top = fr.features[own[0]] if own else top
    return {
        "id": track.anomaly_id,
        "entity": {"kind": top.kind, "service": top.service, "operation": top.operation or None,
                   "target": top.target or None},
        "opened_at": _iso(int(fr.windows[onset])),
        "closed_at": _iso(int(fr.windows[i1]) + w) if closed else None,
        "score": round(score, 3),
        "severity": severity,
        "features": feats,
        "root_causes": root,
        "evidence": {
            "window": {"start": _iso(int(fr.windows[onset])), "end": _iso(int(fr.windows[i1]) + w)},
            "first_alert_window": _iso(track.first),
            "alerted_at": _iso((track.opened_window or track.last) + w),
            "last_window": _iso(track.last),
            "window_s": w,
            "root_causes_latest": latest,
            "peak_window": _iso(int(fr.windows[peak_i])),
            "kind": kind,
            "services": svcs,
            "abnormal": {s: sorted({m for m, _ in ms}) for s, ms in sorted(top_metrics.items())},
            "dropped_calls": {c: [t for t, _ in v] for c, v in sorted(dropped.items())},
            "propagation": [[a, b] for a, b in fr.edges if a in anomalous and b in anomalous],
            "model_id": scored.model_id,
            "threshold": round(thr, 4),
            "close_reason": track.close_reason or None,
            "trace_ids": [],
        },
    }  # fmt: skip


def _load_induced(top_metrics: dict[str, list[tuple[str, float]]]) -> bool:
    busier = {s for s, ms in top_metrics.items() if any(m in TRAFFIC and v > 0 for m, v in ms)}
    if len(busier) < 2:
        return False
    for s, ms in top_metrics.items():
        for m, v in ms:
            if m in TRAFFIC and v > 0:
                continue
            if m in LOAD_LATENCY and v > 0 and s in busier:
                continue
            return False
    return True


def _run(mask: np.ndarray) -> int:
    """Length of the longest run of True."""
    best = cur = 0
    for v in mask:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best


COUNT_METRICS = frozenset(
    {"slow", "self_slow", "errors", "volume", "cfail", "retries", "lag", "slow_far", "self_far", "lag_far"}
)


def _signed(scored: Scored, i: int, j: int) -> float:
    """Signed deviation at window ``i`` (log ratio for the count tests' natural units)."""
    fr = scored.frame
    if fr.features[j].metric in COUNT_METRICS and scored.expected is not None:
        x, e = float(np.nan_to_num(fr.raw[i, j])), float(np.nan_to_num(scored.expected[i, j]))
        return float(np.log((x + 1e-3) / (e + 1e-3)))
    if scored.expected is None:
        return float(np.nan_to_num(fr.X[i, j] - np.nanmedian(fr.X[:, j])))
    return float(np.nan_to_num(fr.X[i, j] - scored.expected[i, j]))


def _feature(f: Feature, j: int, i: int, scored: Scored) -> dict[str, Any]:
    value = float(scored.frame.raw[i, j]) if not np.isnan(scored.frame.raw[i, j]) else None
    base = float(inverse(f.metric, scored.expected[i, j])) if scored.expected is not None else None
    ratio = value / base if value is not None and base not in (None, 0.0) else None
    unit = METRICS[f.metric][1]
    out: dict[str, Any] = {
        "name": f.label,
        "value": _round(value),
        "baseline": _round(base),
        "ratio": _round(ratio),
        "feature": f.name,
        "unit": unit,
        "severity": round(float(scored.F[i, j] / scored.threshold), 3),
    }
    if ratio is not None:
        out["text"] = f"{f.label} {ratio:.1f}x baseline ({_round(value)} vs {_round(base)} {unit})"
    return out


def _round(v: float | None) -> float | None:
    if v is None or not np.isfinite(v):
        return None
    return float(f"{v:.4g}")


def _kind(metrics: list[tuple[str, float]]) -> str:
    names = {m for m, _ in metrics}
    if "retries" in names:
        return "retry_storm"
    if names & {"lag", "lag_far"}:
        return "queue_lag"
    if names & {"err", "errors"}:
        return "own_errors"
    if "cfail" in names:
        return "failing_or_unreachable_dependency"
    if names & {"self", "self_slow", "self_far"}:
        return "slow_itself"
    if "cpr" in names:
        return "retry_storm_or_fanout"
    if names & {"childless", "spans_per_trace"}:
        return "structure_change"
    if names and names <= TRAFFIC:
        return "traffic_drop"
    if names & {"p50", "p95", "p99", "slow", "slow_far"}:
        return "slow_dependency"
    return "unknown"


def anomaly_id(first_window: int, services: set[str], source: str) -> str:
    key = f"{source}|{first_window}|{','.join(sorted(services))}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]
