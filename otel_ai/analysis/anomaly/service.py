"""The anomaly service: scheduled detection, retraining, replay over any range, persistence.

Live: every ``interval_s`` the last closed window (plus a short look-back for onset and RCA) is
featurized, scored by the persisted autoencoder and fed to the :class:`Tracker`; anomalies are
written when they open, grow and close. Every ``retrain_interval_s`` a new model is trained on
the trailing ``train_days`` of clean windows (windows of recent anomalies excluded, except ones
that lasted past ``adopt_level_shift_s``: a permanent level change becomes the new normal).
Replay: :meth:`AnomalyService.detect` scores every window of a past range.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.counts import CountRows, fetch_counts, query_counts
from otel_ai.analysis.anomaly.detector import AutoencoderDetector
from otel_ai.analysis.anomaly.engine import Scored, Track, Tracker, anomaly_id, describe, score_frame
from otel_ai.analysis.anomaly.features import Feature, FeatureFrame, WindowRows, extract, pivot, pool_groups
from otel_ai.analysis.anomaly.stats import CountTests
from otel_ai.analysis.anomaly.store import AnomalyStore, StoredModel
from otel_ai.errors import DetectorError, InvalidParameter
from otel_ai.storage import Storage
from otel_ai.timeutil import parse_instant, rfc3339

log = logging.getLogger(__name__)
LOOKBACK_WINDOWS = 30
EXCLUDE_MARGIN_S = 1800


class Model:
    """A fitted detector with its feature schema and count tests (what a stored model row holds)."""

    def __init__(self, det: AutoencoderDetector, features: list[Feature], model_id: str, train_end: datetime,
                 stats: CountTests | None = None, train_start: datetime | None = None,
                 trained_at: datetime | None = None) -> None:  # fmt: skip
        self.det, self.features, self.model_id, self.train_end = det, features, model_id, train_end
        self.stats = stats
        self.train_start = train_start
        self.trained_at = trained_at or datetime.now(UTC)

    def to_bytes(self) -> bytes:
        """One ``.npz`` (no pickle): the autoencoder's own blob and the count tests as JSON."""
        buf = io.BytesIO()
        parts = {"ae": np.frombuffer(self.det.to_bytes(), dtype=np.uint8)}
        if self.stats is not None:
            parts["stats"] = np.frombuffer(self.stats.to_json().encode(), dtype=np.uint8)
        np.savez(buf, **parts)  # type: ignore[arg-type]
        return buf.getvalue()

    @staticmethod
    def parts(blob: bytes) -> tuple[AutoencoderDetector, CountTests | None]:
        try:
            data = np.load(io.BytesIO(blob), allow_pickle=False)
            ae = bytes(data["ae"])
            st = CountTests.from_json(bytes(data["stats"]).decode()) if "stats" in data.files else None
        except DetectorError:
            raise
        except Exception as exc:
            raise DetectorError(f"stored model is unreadable: {exc}") from None
        return AutoencoderDetector.from_bytes(ae), st


class AnomalyService:
    def __init__(self, storage: Storage, config: AnomalyConfig, registry: CollectorRegistry | None = None,
                 *, topology: Any = None) -> None:  # fmt: skip
        self.storage, self.cfg, self.topology = storage, config, topology
        self.store = AnomalyStore(storage)
        self.model: Model | None = None
        self.tracker = Tracker(config)
        self._windows = WindowRows(config.refresh_windows)  # the scoring cycles' feature rows
        self._counts = WindowRows(config.refresh_windows, query_counts, CountRows.from_tuples)
        self._last_window: int | None = None
        self._lock = threading.Lock()
        self._started_at = datetime.now(UTC)
        self._last_retrain_at: datetime | None = None
        self._training_since: datetime | None = None
        reg = registry if registry is not None else CollectorRegistry()
        self.m_cycles = Counter(
            "otel_ai_anomaly_cycles", "Detection cycles by outcome", ["outcome"], registry=reg
        )
        self.m_opened = Counter(
            "otel_ai_anomaly_opened", "Anomalies opened by severity", ["severity"], registry=reg
        )
        self.m_score = Gauge("otel_ai_anomaly_window_score", "Last window score / threshold", registry=reg)
        self.m_trained = Gauge("otel_ai_anomaly_model_trained_timestamp", "When the live model was trained",
                               registry=reg)  # fmt: skip

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.migrate()
        stored = self.store.latest_model(self.cfg.window_s)
        if stored is not None:
            try:
                det, stats = Model.parts(stored.blob)
                feats = [Feature.parse(n) for n in stored.features]
                self.model = Model(det, feats, stored.model_id, stored.train_end, stats, stored.train_start,
                                   stored.created_at)  # fmt: skip
                self.m_trained.set(stored.created_at.timestamp())
                log.info("anomaly: loaded model %s (%d features)", stored.model_id, len(feats))
            except DetectorError as exc:
                log.warning("anomaly: stored model %s ignored: %s", stored.model_id, exc)
        # Open anomalies survive a restart: their tracks (and streaks) come back from storage, and
        # the first cycle replays the windows missed while the daemon was down (up to the look-back).
        last = self.tracker.restore(self.store.open_ids())
        # ... and so does the cool-down of services whose anomaly recovered shortly before.
        since = datetime.now(UTC) - timedelta(seconds=self.tracker.cool_down_s + self.cfg.window_s)
        self.tracker.restore_recovered(self.store.closed_since(since))
        if last is not None:
            self._last_window = last
            log.info("anomaly: resumed %d open anomalies", len(self.tracker.tracks))

    def shutdown(self) -> None:
        return None  # jobs belong to the daemon's scheduler, which it shuts down; nothing to release

    def register_jobs(self, scheduler: Any) -> None:
        scheduler.add_job(self._safe(self.run_cycle), "interval", seconds=self.cfg.interval_s,
                          id="anomaly-detect", replace_existing=True)  # fmt: skip
        scheduler.add_job(self._safe(self.retrain), "interval", seconds=self.cfg.retrain_interval_s,
                          id="anomaly-retrain", replace_existing=True)  # fmt: skip

    def _safe(self, fn: Any) -> Any:
        def job() -> None:
            try:
                fn()
            except Exception:  # a failed cycle must not kill the scheduler
                self.m_cycles.labels("error").inc()
                log.exception("anomaly job %s failed", fn.__name__)

        job.__name__ = fn.__name__
        return job

    # -- training -------------------------------------------------------------------------------
    def _detector(self, frame: FeatureFrame) -> AutoencoderDetector:
        c = self.cfg
        return AutoencoderDetector(
            pool_groups=pool_groups(frame),
            hidden=c.hidden, bottleneck=c.bottleneck, alpha=c.alpha, max_iter=c.max_iter, n_context=2,
            calibration_fraction=c.calibration_fraction, false_alarm_rate=c.false_alarm_rate,
            threshold_margin=c.threshold_margin, random_state=c.random_state, seasonal_slots=c.seasonal_slots,
            value_term=c.value_term,
        )  # fmt: skip

    def train(self, start: datetime, end: datetime, *, exclude: list[tuple[int, int]] | None = None) -> Model:
        """Fit a model on ``[start, end)``; windows inside ``exclude`` (unix second ranges) are dropped."""
        frame = extract(self.storage, start, end, self.cfg.window_s, min_count=self.cfg.min_count,
                        top_operations=self.cfg.top_operations, min_errors=self.cfg.min_errors)  # fmt: skip
        keep = np.array(
            [sum(v[i] for v in frame.volume.values()) > 0 for i in range(len(frame.windows))], bool
        )
        for a, b in exclude or []:
            keep &= ~((frame.windows + frame.window_s > a) & (frame.windows < b))
        if not frame.features:
            raise DetectorError("no spans in the training range")
        train = frame.slice(keep)
        det = self._detector(train)
        det.fit(np.hstack([train.X, train.context]))
        mid = f"ae-{end.astimezone(UTC):%Y%m%dT%H%M%S}-{len(frame.features)}f"
        stats = None
        if self.cfg.count_tests:
            stats = self._count_tests()
            stats.fit(fetch_counts(self.storage, start, end, self.cfg.window_s), frame.windows, keep)
        return Model(det, frame.features, mid, end, stats, start)

    def _count_tests(self) -> CountTests:
        c = self.cfg
        return CountTests(window_s=c.window_s, resolutions_s=tuple(c.resolutions_s), min_count=c.count_min,
                          false_alarm_rate=c.count_false_alarm_rate, min_ratio=c.min_ratio, min_drop=c.min_drop,
                          slots=max(1, c.seasonal_slots))  # fmt: skip

    def _score(self, model: Model, frame: FeatureFrame, counts: CountRows | None) -> Scored:
        """Autoencoder scores, widened by the count tests when the model has them."""
        st = peers = None
        if model.stats is not None and counts is not None:
            h, w = model.stats.history_windows, frame.window_s
            lead = frame.windows[0] - w * np.arange(h, 0, -1) if len(frame.windows) else np.zeros(0, np.int64)
            st = model.stats.score(counts, np.concatenate([lead, frame.windows]).astype(np.int64), first=h)
            peers = model.stats.peer_edges()
        return score_frame(model.det, frame, model.model_id, stats=st, peer_edges=peers,
                           min_latency_change=self.cfg.min_latency_change)  # fmt: skip

    def _range_counts(self, model: Model, start: datetime, end: datetime) -> CountRows | None:
        if model.stats is None:
            return None
        lead = timedelta(seconds=model.stats.history_windows * self.cfg.window_s)
        return fetch_counts(self.storage, start - lead, end, self.cfg.window_s)

    def _history(self, now: datetime) -> tuple[datetime | None, float]:
        """First span inside the training horizon and the seconds of history since it."""
        start = now - timedelta(days=self.cfg.train_days)
        rows = self.storage.query(
            "SELECT min(Timestamp), count() FROM {db:Identifier}.otel_traces WHERE Timestamp >= {s:DateTime64(9)}",
            {"db": self.storage.database, "s": start.astimezone(UTC).replace(tzinfo=None)},
        )
        first, count = rows[0] if rows else (None, 0)
        if not count or first is None:
            return None, 0.0
        first = max(first.replace(tzinfo=UTC), start)
        return first, max(0.0, (now - first).total_seconds())

    def retrain(self, now: datetime | None = None, *, force: bool = False) -> bool:
        """Train on the trailing ``train_days`` if enough history exists; persist and go live.

        ``force`` (``POST /api/v1/anomalies/retrain``): train now on whatever history there is,
        down to ``FORCE_MIN_HISTORY_S`` (the model state then says how little it has seen)."""
        now = now or datetime.now(UTC)
        self._last_retrain_at = now
        start = now - timedelta(days=self.cfg.train_days)
        first, have = self._history(now)
        need = FORCE_MIN_HISTORY_S if force else self.cfg.min_history_s
        if first is None or have < need:
            if force:
                raise DetectorError(f"not enough history to train: {_dur(have)} of at least {_dur(need)}")
            return False
        exclude, adopted = self._exclusions(now)
        self._training_since = now
        try:
            model = self.train(max(start, first), now, exclude=exclude)
        finally:
            self._training_since = None
        self.store.save_model(
            StoredModel(model.model_id, now, self.cfg.window_s, start, now, [f.name for f in model.features],
                        model.to_bytes()),
            model.det.threshold_,
        )  # fmt: skip
        with self._lock:
            self.model = model
            adopted_ids = {a["id"] for a in adopted}
            for a in adopted:  # a level shift that lasted: the new model treats it as normal
                a["closed_at"] = a["closed_at"] or now.isoformat()
                a["evidence"]["close_reason"] = "adopted as the new baseline by retraining"
                self.store.save_anomaly(a, "live")
            # Other open anomalies carry on under the new model (a retrain must not re-page them).
            self.tracker.tracks = [t for t in self.tracker.tracks if t.anomaly_id not in adopted_ids]
        self.m_trained.set(now.timestamp())
        log.info("anomaly: trained %s", model.model_id)
        return True

    def _exclusions(self, now: datetime) -> tuple[list[tuple[int, int]], list[dict[str, Any]]]:
        since = now - timedelta(days=self.cfg.train_days)
        exclude, adopted = [], []
        for a in self.store.find(since, now):
            if a["source"] != "live":
                continue
            opened = parse_instant(a["opened_at"])
            closed = parse_instant(a["closed_at"]) if a["closed_at"] else now
            if a["status"] == "open" and (now - opened).total_seconds() >= self.cfg.adopt_level_shift_s:
                adopted.append(a)
                continue
            exclude.append(
                (int(opened.timestamp()) - EXCLUDE_MARGIN_S, int(closed.timestamp()) + EXCLUDE_MARGIN_S)
            )
        return exclude, adopted

    # -- scoring ------------------------------------------------------------------------------
    def _frame(self, model: Model, start: datetime, end: datetime) -> FeatureFrame:
        return extract(self.storage, start, end, self.cfg.window_s, min_count=self.cfg.min_count,
                       features=model.features, min_errors=self.cfg.min_errors)  # fmt: skip

    def run_cycle(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Score the last closed window(s); store anomalies that open, grow or close."""
        now = now or datetime.now(UTC)
        w = self.cfg.window_s
        if self.model is None and not self.retrain(now):
            self.m_cycles.labels("no_model").inc()
            return []
        model = self.model
        assert model is not None
        end_ts = int((now.timestamp() - min(15, w / 4)) // w * w)
        start_ts = end_ts - LOOKBACK_WINDOWS * w
        rows = self._windows.fetch(self.storage, start_ts, end_ts, w)
        frame = pivot(rows, model.features, datetime.fromtimestamp(start_ts, UTC),
                      datetime.fromtimestamp(end_ts, UTC), w, min_count=self.cfg.min_count,
                      min_errors=self.cfg.min_errors)  # fmt: skip
        counts = None
        if model.stats is not None:
            counts = self._counts.fetch(self.storage, start_ts - model.stats.history_windows * w, end_ts, w)
        scored = self._score(model, frame, counts)
        out: list[dict[str, Any]] = []
        with self._lock:
            for i, win in enumerate(frame.windows):
                if self._last_window is not None and win <= self._last_window:
                    continue
                if self._last_window is None and i < len(frame.windows) - 1:
                    continue  # a fresh start scores only the newest window (history is for onset/RCA)
                out.extend(self._handle(self.tracker.step(scored, i), scored, "live"))
                self._last_window = int(win)
        if len(frame.windows):
            self.m_score.set(float(scored.window_score[-1] / scored.threshold))
        self.m_cycles.labels("ok").inc()
        return out

    def _handle(self, events: list[tuple[str, Track]], scored: Scored, source: str) -> list[dict[str, Any]]:
        out = []
        for event, track in events:
            if event == "open":
                track.anomaly_id = anomaly_id(track.first, track.services, source)
            a = describe(
                track,
                scored,
                closed=event == "close",
                open_after=self.cfg.open_after,
                rerank_s=self.cfg.rerank_s,
            )
            a["evidence"]["trace_ids"] = self._trace_ids(a)
            track.saved_peak, track.saved_services = track.peak, len(track.services)
            self.store.save_anomaly(a, source)
            a["source"] = source
            if event == "open":
                self.m_opened.labels(a["severity"]).inc()
            out.append(a)
        return out

    def _trace_ids(self, a: dict[str, Any]) -> list[str]:
        if self.cfg.example_traces == 0:
            return []
        svc = [str(r["service"]) for r in a["root_causes"][:1]] or [a["entity"]["service"]]
        rows = self.storage.query(
            "SELECT TraceId FROM {db:Identifier}.otel_traces WHERE ServiceName IN {s:Array(String)}"
            " AND Timestamp >= {a:DateTime64(9)} AND Timestamp < {b:DateTime64(9)}"
            " ORDER BY StatusCode IN ('Error', 'STATUS_CODE_ERROR') DESC, Duration DESC LIMIT {n:UInt32}",
            {"db": self.storage.database, "s": svc, "n": self.cfg.example_traces,
             "a": parse_instant(a["evidence"]["peak_window"]).replace(tzinfo=None),
             "b": (parse_instant(a["evidence"]["peak_window"]) + timedelta(seconds=self.cfg.window_s)).replace(
                 tzinfo=None)},
        )  # fmt: skip
        return [str(r[0]) for r in rows]

    def detect(self, since: datetime, until: datetime, train_since: datetime | None = None,
               train_until: datetime | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Score every window of ``[since, until)`` (replay); store and return what opened."""
        if (train_since is None) != (train_until is None):
            raise InvalidParameter("train_since" if train_since is None else "train_until",
                                   "give both train_since and train_until, or neither")  # fmt: skip
        if train_since is not None and train_until is not None:
            if train_until <= train_since:
                raise InvalidParameter("train_until", "must be after train_since")
            model = self.train(train_since, train_until)
        elif self.model is not None:
            model = self.model
        else:
            raise InvalidParameter("train_since", "no live model yet: give train_since and train_until")
        frame = self._frame(model, since, until)
        scored = self._score(model, frame, self._range_counts(model, since, until))
        tracker = Tracker(self.cfg)
        out: dict[str, dict[str, Any]] = {}
        for i in range(len(frame.windows)):
            for a in self._handle(tracker.step(scored, i), scored, "replay"):
                out[a["id"]] = a
        for t in tracker.tracks:  # still open at the end of the range: final description
            if t.opened and t.anomaly_id:
                a = describe(
                    t, scored, closed=False, open_after=self.cfg.open_after, rerank_s=self.cfg.rerank_s
                )
                a["evidence"]["trace_ids"] = self._trace_ids(a)
                self.store.save_anomaly(a, "replay")
                out[a["id"]] = a | {"source": "replay"}
        return sorted(out.values(), key=lambda a: (a["opened_at"], a["id"]))

    # -- reads ----------------------------------------------------------------------------------
    def list(self, since: datetime, until: datetime, *, service: str | None = None,
             status: str | None = None, source: str = "live") -> list[dict[str, Any]]:  # fmt: skip
        return self.store.find(since, until, service=service, status=status, source=source)

    def get(self, anomaly_id: str) -> dict[str, Any] | None:
        return self.store.get(anomaly_id)

    def status(self) -> dict[str, Any]:
        m = self.model
        return {"model_id": m.model_id if m else None, "features": len(m.features) if m else 0,
                "threshold": m.det.threshold_ if m else None, "checked_at": time.time()}  # fmt: skip

    def model_state(self, now: datetime | None = None) -> dict[str, Any]:
        """What the detector is doing, for ``GET /api/v1/anomalies`` (``"model"``) and the CLI."""
        now = now or datetime.now(UTC)
        nxt = (self._last_retrain_at or self._started_at) + timedelta(seconds=self.cfg.retrain_interval_s)
        sooner = ("POST /api/v1/anomalies/retrain (otel-ai anomalies retrain) trains now on the history there is "
                  f"(at least {_dur(FORCE_MIN_HISTORY_S)}); or lower anomaly.min_history_s")  # fmt: skip
        m = self.model
        out: dict[str, Any] = {"state": "no_model", "next_retrain_at": rfc3339(nxt)}
        if self._training_since is not None:
            out |= {"state": "training", "training_since": rfc3339(self._training_since)}
        if m is None:
            _first, have = self._history(now)
            need = self.cfg.min_history_s
            out |= {"history_s": round(have), "needed_s": need, "how_to_get_there_sooner": sooner,
                    "text": f"no model yet: {_dur(have)} of {_dur(need)} history (no alerts until then)"}  # fmt: skip
            if out["state"] == "training":
                out["text"] = f"training the first model since {out['training_since']}"
            return out
        span = (m.train_end - m.train_start).total_seconds() if m.train_start else None
        conf, note = _confidence(span)
        out |= {"state": out["state"] if out["state"] == "training" else "trained", "model_id": m.model_id,
                "trained_at": rfc3339(m.trained_at),
                "train_range": {"start": rfc3339(m.train_start) if m.train_start else None,
                                "end": rfc3339(m.train_end)},
                "features": len(m.features), "count_tests": len(m.stats.tests) if m.stats else 0,
                "confidence": conf,
                "text": f"trained at {rfc3339(m.trained_at)} on {_dur(span or 0)} of history; {note}"}  # fmt: skip
        if conf != "high":
            out["how_to_get_there_sooner"] = "confidence grows with history; retraining runs every " + _dur(
                self.cfg.retrain_interval_s
            )
        return out


FORCE_MIN_HISTORY_S = 1800


def _dur(seconds: float) -> str:
    s = int(seconds)
    if s >= 86400:
        return f"{s / 86400:.1f} d"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{s // 60} min"


def _confidence(span_s: float | None) -> tuple[str, str]:
    """Honest wording of how much a model trained on ``span_s`` of history can be trusted."""
    if span_s is None or span_s < 86400:
        return "low", ("less than a day of history: no time-of-day profile, so daily swings may alert; "
                       "expect more false alarms until a full day has been seen")  # fmt: skip
    if span_s < 7 * 86400:
        return "medium", "under a week of history: weekly patterns (weekends) are not known yet"
    return "high", "a week or more of history"


def build_anomaly_service(storage: Storage, config: AnomalyConfig, registry: CollectorRegistry | None,
                          *, topology: Any = None) -> AnomalyService | None:  # fmt: skip
    if not config.enabled:
        return None
    return AnomalyService(storage, config, registry, topology=topology)
