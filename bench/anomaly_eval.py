"""Evaluate anomaly detection + RCA against calibrated baselines (anomaly_anchors.md §5).

Writes synthetic shop traffic (``otel_ai.analysis.anomaly.synthetic``: days of clean training
traffic, then test days with faults of several types x 3 magnitudes and a flash crowd) into an
embedded chDB, extracts features with the production SQL, and runs the production Tracker +
RCA for the autoencoder and every baseline under the same false-alarm budget.

Metrics (no point-adjust): a fault is detected if an anomaly opens in [start-5min, end+5min];
other openings are false alarms (per day). Delay = first alert window - fault start. RCA AC@k
over all faults (a miss counts as wrong), with chance level 1/#services.

    .venv/bin/python bench/anomaly_eval.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otel_ai.analysis.anomaly import synthetic as syn
from otel_ai.analysis.anomaly.baselines import baseline_detectors
from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.detector import AutoencoderDetector, WindowDetector
from otel_ai.analysis.anomaly.engine import MARGINAL_GATE, Tracker, describe, score_frame
from otel_ai.analysis.anomaly.features import extract
from otel_ai.storage import Storage

# (type, service, magnitudes mild/medium/severe)
FAULTS = [
    ("latency", "payment", (6.0, 15.0, 40.0)),
    ("latency", "valkey", (1.0, 3.0, 10.0)),
    ("latency", "currency", (2.0, 5.0, 15.0)),
    ("errors", "payment", (0.05, 0.15, 0.5)),
    ("errors", "cart", (0.05, 0.15, 0.5)),
    ("unreachable", "currency", (0.0, 0.0, 1.0)),
]
LEVELS = ("mild", "medium", "severe")


def schedule(test_start: int, days: float, seed: int) -> tuple[list[syn.Fault], list[dict]]:
    rng = np.random.default_rng(seed)
    cases = [(t, s, lvl, mag[li]) for t, s, mag in FAULTS for li, lvl in enumerate(LEVELS) if mag[li] > 0]
    slots = int(days * 24 * 60 // 80)
    faults, truth = [], []
    order = rng.permutation(len(cases) * 4)[:slots]
    for k, idx in enumerate(order):
        t, s, lvl, m = cases[idx % len(cases)]
        start = test_start + k * 80 * 60 + 20 * 60
        dur = int(rng.integers(10, 21)) * 60
        if k == slots // 2:  # one benign flash crowd in the middle of the test
            faults.append(syn.Fault("frontend", start, start + 20 * 60, rate_factor=3.0))
            truth.append({"type": "flash_crowd", "service": None, "level": "benign", "start": start,
                          "end": start + 20 * 60})  # fmt: skip
            continue
        f = syn.Fault(s, start, start + dur)
        if t == "latency":
            f.latency_ms = m
        elif t == "errors":
            f.error_p = m
        else:
            f.unreachable = True
        faults.append(f)
        truth.append({"type": t, "service": s, "level": lvl, "start": start, "end": start + dur})
    return faults, truth


def run_detector(det: WindowDetector, train, test, cfg: AnomalyConfig, gate: bool) -> list[dict]:
    t = time.perf_counter()
    det.fit(np.hstack([train.X, train.context]))
    fit_s = time.perf_counter() - t
    # The value gate belongs to the reconstruction methods (AE, linear AE, PCA); z-family
    # baselines are marginal already and their raw variants must stay raw.
    scored = score_frame(det, test, type(det).__name__, gate=MARGINAL_GATE if gate else 0.0)
    tracker = Tracker(cfg)
    out = []
    for i in range(len(test.windows)):
        for ev, track in tracker.step(scored, i):
            if ev == "open":
                a = describe(track, scored, closed=False, open_after=cfg.open_after)
                a["alert_ts"] = int(test.windows[i]) + test.window_s
                out.append(a)
    return out, fit_s  # type: ignore[return-value]


def evaluate(found: list[dict], truth: list[dict], days: float, n_services: int) -> dict:
    faults = [g for g in truth if g["type"] != "flash_crowd"]
    benign = [g for g in truth if g["type"] == "flash_crowd"]
    used: set[int] = set()
    per: dict[tuple[str, str], list] = defaultdict(list)
    fa = 0
    for k, a in enumerate(found):
        opened = datetime.fromisoformat(a["opened_at"].replace("Z", "+00:00")).timestamp()
        if any(g["start"] - 300 <= opened <= g["end"] + 300 for g in faults):
            continue
        in_benign = any(g["start"] - 300 <= opened <= g["end"] + 300 for g in benign)
        if in_benign and a["severity"] == "info":
            continue  # an allowed, non-paging traffic note
        fa += 1
        used.add(k)
    fa_idx = sorted(used)
    for g in faults:
        hit = None
        for a in found:
            opened = datetime.fromisoformat(a["opened_at"].replace("Z", "+00:00")).timestamp()
            if g["start"] - 300 <= opened <= g["end"] + 300:
                hit = a
                break
        rank = [r["service"] for r in hit["root_causes"]] if hit else []
        delay = (hit["alert_ts"] - g["start"]) / 60 if hit else None
        per[(g["type"], g["level"])].append(
            (hit is not None, delay, rank.index(g["service"]) if g["service"] in rank else 99)
        )
        per[("all", g["level"])].append(per[(g["type"], g["level"])][-1])
    return {"per": per, "fa_day": fa / days, "fa": fa, "n_services": n_services, "fa_idx": fa_idx}


def summarize(rows: list, fa_day: float, days: float) -> dict:
    """Event precision = detected faults / (detected faults + false-alarm episodes of the run)."""
    n = len(rows)
    det = [r for r in rows if r[0]]
    rec = len(det) / n if n else float("nan")
    delays = [r[1] for r in det]
    prec_den = len(det) + fa_day * days
    prec = len(det) / prec_den if prec_den else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {
        "n": n, "recall": rec, "f1": f1,
        "delay_med": float(np.median(delays)) if delays else float("nan"),
        "delay_p90": float(np.percentile(delays, 90)) if delays else float("nan"),
        "ac1": np.mean([r[2] < 1 for r in rows]) if n else float("nan"),
        "ac3": np.mean([r[2] < 3 for r in rows]) if n else float("nan"),
        "avg5": np.mean([np.mean([r[2] < k for k in range(1, 6)]) for r in rows]) if n else float("nan"),
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 training day + 1 test day (a few minutes)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--verbose", action="store_true", help="list the autoencoder's false alarms")
    ap.add_argument("--rate", type=float, default=40.0, help="requests per minute at the ingress")
    args = ap.parse_args()
    train_days, test_days = (1.0, 1.0) if args.quick else (3.0, 2.0)
    tmp = tempfile.mkdtemp(prefix="anomaly-eval-")
    st = Storage(f"chdb://{tmp}/ch", "evaluation")
    st.start()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    t0 = now - timedelta(days=train_days + test_days)
    test_start = int(t0.timestamp() + train_days * 86400)
    faults, truth = schedule(test_start, test_days, args.seed)
    t = time.perf_counter()
    spans = syn.write(
        st, t0, int((train_days + test_days) * 1440), syn.SynthConfig(args.rate, 0.3, args.seed, faults)
    )
    print(f"wrote {spans:,} spans in {time.perf_counter() - t:.1f}s; {len(truth) - 1} faults + 1 flash crowd")
    cfg = AnomalyConfig()
    t = time.perf_counter()
    train = extract(st, t0, datetime.fromtimestamp(test_start, UTC), 60, min_count=cfg.min_count,
                    top_operations=cfg.top_operations, min_errors=cfg.min_errors)  # fmt: skip
    test = extract(st, datetime.fromtimestamp(test_start, UTC), now, 60, min_count=cfg.min_count,
                   features=train.features, min_errors=cfg.min_errors)  # fmt: skip
    print(f"features: {len(train.features)} x {len(train.windows) + len(test.windows)} windows "
          f"in {time.perf_counter() - t:.1f}s")  # fmt: skip
    dets: dict[str, WindowDetector] = {"autoencoder": AutoencoderDetector(n_context=2, random_state=0)}
    dets.update(baseline_detectors(2, cfg.false_alarm_rate))
    results = {}
    for name, det in dets.items():
        found, fit_s = run_detector(det, train, test, cfg, gate=name in ("autoencoder", "linear-ae", "pca"))
        results[name] = evaluate(found, truth, test_days, len(train.services))
        if args.verbose and name == "autoencoder":
            for k in results[name]["fa_idx"]:
                a = found[k]
                print("  false alarm", a["opened_at"], a["severity"], a["evidence"]["abnormal"])
        results[name]["fit_s"] = fit_s
    chance1 = 1 / len(train.services)
    print(f"\nchance: AC@1 {chance1:.3f}  AC@3 {min(1, 3 * chance1):.3f}; false-alarm budget "
          f"{cfg.false_alarm_rate} per window on held-out clean windows; open after {cfg.open_after}\n")  # fmt: skip
    hdr = (
        f"{'detector':15s} {'level':7s} {'n':>3s} {'recall':>6s} {'F1':>5s} {'FA/day':>6s} {'dly50':>5s} "
        f"{'dly90':>5s} {'AC@1':>5s} {'AC@3':>5s} {'Avg@5':>5s} {'fit s':>5s}"
    )
    print(hdr)
    best_f1: dict[str, float] = defaultdict(float)
    for name, r in results.items():
        for lvl in LEVELS:
            s = summarize(r["per"][("all", lvl)], r["fa_day"], test_days)
            if name != "autoencoder" and "raw" not in name:
                best_f1[lvl] = max(best_f1[lvl], s["f1"])
            print(f"{name:15s} {lvl:7s} {s['n']:3d} {s['recall']:6.2f} {s['f1']:5.2f} {r['fa_day']:6.1f} "
                  f"{s['delay_med']:5.1f} {s['delay_p90']:5.1f} {s['ac1']:5.2f} {s['ac3']:5.2f} {s['avg5']:5.2f} "
                  f"{r['fit_s']:5.1f}")  # fmt: skip
    print("\nautoencoder per fault type:")
    ae = results["autoencoder"]
    for (typ, lvl), rows in sorted(ae["per"].items()):
        if typ == "all":
            continue
        s = summarize(rows, ae["fa_day"], test_days)
        print(f"  {typ:12s} {lvl:7s} n={s['n']:2d} recall {s['recall']:.2f} delay {s['delay_med']:.1f} "
              f"AC@1 {s['ac1']:.2f} AC@3 {s['ac3']:.2f}")  # fmt: skip
    print("\nF1 ratio autoencoder / best calibrated baseline:")
    for lvl in LEVELS:
        s = summarize(ae["per"][("all", lvl)], ae["fa_day"], test_days)
        print(
            f"  {lvl:7s} {s['f1']:.2f} / {best_f1[lvl]:.2f} = {s['f1'] / best_f1[lvl] if best_f1[lvl] else float('inf'):.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
