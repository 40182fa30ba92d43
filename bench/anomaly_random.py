"""``bench/anomaly_eval.py --source random``: a random application per seed, nobody tuned on it.

Per seed: ``otel_ai.analysis.anomaly.randomapp`` draws an application (6-30 services, uninstrumented
peers, a queue, volumes over three orders of magnitude, diurnal traffic, 1-3 instances), writes
``train_days`` of clean traffic and ``hours`` of test traffic with one fault every 40 minutes
(every kind at medium and severe in a shuffled order, a third of them at one of the 3 quietest
eligible targets, the rest at uniformly random ones), a flash crowd (benign) and a permanent +10% deploy step (benign) at the end. Then:

- the detector: :meth:`AnomalyService.detect` trained on the training days (the code path of
  ``POST /api/v1/anomalies/detect``, in-process);
- the baseline (``anomaly_robustz.py``): per-service robust z over 5-minute windows of request
  count against a time-of-day profile, error ratio and p95, each (service, metric) with its own
  threshold calibrated on the last training day; root causes by z / threshold.

Both are scored by the same protocol as the demo source (event level, no point-adjust).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from anomaly_robustz import affected, robust_z

from otel_ai.analysis.anomaly import randomapp as ra
from otel_ai.analysis.anomaly.config import AnomalyConfig
from otel_ai.analysis.anomaly.service import AnomalyService
from otel_ai.config import load_config
from otel_ai.errors import ConfigError
from otel_ai.testing.stores import storage_at

KINDS = ("latency", "errors", "unreachable", "retry", "lag", "traffic")
MAGNITUDE = {  # mild, medium, severe
    "latency": (2.0, 5.0, 10.0),  # self-time x
    "errors": (0.05, 0.15, 0.4),  # error probability
    "unreachable": (0.3, 0.6, 1.0),  # share of calls refused
    "retry": (2, 3, 5),  # attempts per call
    "lag": (2.0, 10.0, 60.0),  # seconds added to the queue lag
    "traffic": (0.6, 0.5, 0.3),  # entry traffic x (-40 %, -50 %, -70 %)
}
LEVELS = ("mild", "medium", "severe")
SLOT_MIN = 40
# Every run of a seed is anchored at the same instant, so its spans (the generator's random
# stream depends on the minute) and its figures are the same whenever it runs: test traffic
# starts on a fixed day at a seed-derived hour (7 hours apart per seed, so the seeds of a set
# spread their faults over the time of day). The store has no TTL, so old instants stay.
ANCHOR = datetime(2026, 11, 2, tzinfo=UTC)


def anchor(seed: int) -> datetime:
    """Start of a seed's test hours: the fixed day plus ``7 * seed mod 24`` hours."""
    return ANCHOR + timedelta(hours=(7 * seed) % 24)


def _targets(app: ra.App, kind: str) -> list[tuple[str, str, float]]:
    """(target, callee, volume req/min) candidates of a fault kind."""
    vol = app.volume()
    if kind in ("latency", "errors"):
        return [(s, "", vol[s]) for s in app.services]
    if kind == "unreachable":
        names = sorted({u.peer for u in app.units if u.kind != "queue"})
        return [(n, "", vol[n]) for n in names]
    if kind == "retry":
        seen = {(app.services[u.caller], u.peer) for u in app.units if u.kind != "queue"}
        return [(c, p, vol[c] * next(u.p for u in app.units if app.services[u.caller] == c and u.peer == p))
                for c, p in sorted(seen)]  # fmt: skip
    if kind == "lag":
        return [(app.services[app.consumer], "", vol[app.services[app.consumer]])]
    return [(app.services[0], "", vol[app.services[0]])]


def schedule(app: ra.App, test_start: int, hours: float, seed: int) -> tuple[list[ra.Fault], list[dict]]:
    rng = np.random.default_rng(seed + 1000)
    slots = int(hours * 60 // SLOT_MIN)
    cases = [(k, lvl) for k in KINDS for lvl in ("medium", "severe")]
    cases += [(str(rng.choice(KINDS)), "mild") for _ in range(max(0, slots - 2 - len(cases)))]
    order = [cases[i] for i in rng.permutation(len(cases))][: max(0, slots - 2)]
    faults, truth = [], []
    k = 0
    for slot in range(slots):
        start = test_start + slot * SLOT_MIN * 60 + 8 * 60
        if slot == slots // 2:
            faults.append(ra.Fault("traffic", app.services[0], start, start + 20 * 60, 3.0))
            truth.append({"type": "flash_crowd", "service": None, "level": "benign", "start": start,
                          "end": start + 1200, "benign": True})  # fmt: skip
            continue
        if slot == slots - 1:
            tgt = str(rng.choice(app.services))
            faults.append(ra.Fault("deploy", tgt, start, test_start + int(hours * 3600) + 3600, 1.1))
            truth.append({"type": "deploy-latency-step", "service": tgt, "level": "benign", "start": start,
                          "end": start + 1800, "benign": True})  # fmt: skip
            continue
        if k >= len(order):
            continue
        kind, lvl = order[k]
        k += 1
        cands = sorted(_targets(app, kind), key=lambda c: c[2])
        quiet = rng.random() < 1 / 3  # a third at one of the 3 quietest eligible targets
        pick = (
            cands[int(rng.integers(0, min(3, len(cands))))]
            if quiet
            else cands[int(rng.integers(0, len(cands)))]
        )
        target, callee, volume = pick
        dur = int(rng.integers(10, 21)) * 60
        mag = MAGNITUDE[kind][LEVELS.index(lvl)]
        faults.append(ra.Fault(kind, target, start, start + dur, mag, callee=callee))
        label = target  # retry: the caller re-sending; lag: the consumer; traffic: the entry point
        truth.append({"type": kind, "service": label, "level": lvl, "start": start, "end": start + dur,
                      "benign": False, "volume": round(volume, 2), "magnitude": mag, "callee": callee})  # fmt: skip
    return faults, truth


def run_seed(seed: int, path: str, *, train_days: float, hours: float, rate: float,
             cfg: AnomalyConfig, baseline_only: bool = False, clean: bool = False) -> dict[str, Any]:  # fmt: skip
    """One random application (its own database under the one chDB ``path`` of the process):
    generate, detect, baseline. Returns found anomalies and the truth."""
    app = ra.random_app(seed, rate=rate)
    st = storage_at(f"chdb://{path}", f"random_{seed}", ttl_days=0)
    st.start()
    try:
        test_start = anchor(seed)
        t0 = test_start - timedelta(days=train_days)
        end = test_start + timedelta(hours=hours)
        faults, truth = ([], []) if clean else schedule(app, int(test_start.timestamp()), hours, seed)
        t = time.perf_counter()
        spans = ra.write(st, app, int(t0.timestamp()), int((end - t0).total_seconds() // 60), faults, seed)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        found = []
        if not baseline_only:
            svc = AnomalyService(st, cfg)
            svc.start()
            found = svc.detect(test_start, end, t0, test_start)
        det_s = time.perf_counter() - t
        base, base_s = robust_z(st, t0, test_start, end)
        for g in truth:
            if not g["benign"]:
                g["affected"] = affected(st, g)
                g["observable"] = g["affected"] > 0
        vol = app.volume()
        return {"seed": seed, "app": app, "truth": truth, "found": found, "baseline": base, "spans": spans,
                "gen_s": gen_s, "det_s": det_s, "base_s": base_s, "n_services": len(vol),
                "services": len(app.services), "peers": len(vol) - len(app.services),
                "vol_range": (min(vol.values()), max(vol.values()))}  # fmt: skip
    finally:
        st.command(f"DROP DATABASE IF EXISTS `{st.database}`")


def anomaly_config() -> tuple[AnomalyConfig, dict[str, Any]]:
    """The ``anomaly:`` section as the daemon loads it (``OTEL_AI_CONFIG``, ``OTEL_AI_ANOMALY__*``),
    without the live daemon's gates; and the fields that differ from the defaults, for the header."""
    try:
        cfg = load_config(overrides={"anomaly.min_history_s": 0, "anomaly.example_traces": 0}).anomaly
    except ConfigError as exc:
        raise SystemExit(f"anomaly config: {exc}") from exc
    default = AnomalyConfig(min_history_s=0, example_traces=0).model_dump()
    return cfg, {k: v for k, v in cfg.model_dump().items() if v != default[k]}


def _rows_of(res: dict[str, Any], key: str, evaluate: Any, margin: int) -> dict[str, Any]:
    days = res["hours"] / 24
    out = evaluate(res[key], res["truth"], days, res["n_services"], margin, unit=60)
    return out


def main(args: Any, evaluate: Any, summarize: Any) -> int:
    """Run every seed, print per seed and pooled rows for the detector and the baseline."""
    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    cfg, overrides = anomaly_config()
    path = tempfile.mkdtemp(prefix="anomaly-random-")
    print(f"random source: seeds {seeds}, {args.train_days} training days + {args.hours} test hours per seed, "
          f"entry {args.rate:g} req/min, 1-min windows; faults every {SLOT_MIN} min; a fault is found when an "
          f"anomaly opens in [start - 5 min, end + 5 min]; delays in minutes"
          + (f"; anomaly config differing from the defaults {overrides}" if overrides else ""))  # fmt: skip
    results = []
    for seed in seeds:
        t = time.perf_counter()
        r = run_seed(
            seed,
            f"{path}/ch",
            train_days=args.train_days,
            hours=args.hours,
            rate=args.rate,
            cfg=cfg,
            baseline_only=args.baseline_only,
            clean=args.clean,
        )
        r["hours"] = args.hours
        lo, hi = r["vol_range"]
        print(f"seed {seed}: {r['services']} services + {r['peers']} peers, volumes {lo:.2f}-{hi:.0f} req/min, "
              f"{r['spans']:,} spans (written {r['gen_s']:.0f}s), detector {r['det_s']:.0f}s, baseline "
              f"{r['base_s']:.0f}s, total {time.perf_counter() - t:.0f}s")  # fmt: skip
        for name, key in (("detector", "found"), ("robust-z", "baseline")):
            r[name] = _rows_of(r, key, evaluate, 300)
        if args.clean:
            results.append(r)
            continue
        if args.verbose:
            _verbose(r)
        results.append(r)
    shutil.rmtree(path, ignore_errors=True)
    if args.clean:
        clean_report(results)
    else:
        report(results, summarize)
    return 0


def clean_report(results: list[dict[str, Any]]) -> None:
    """A clean control: every anomaly is a false alarm; paging ones and ``info`` notes apart."""
    print("\nclean control (no fault, no benign event): anomalies per seed, paging / info notes")
    tot = {"detector": [0, 0], "robust-z": [0, 0]}
    hours = 0.0
    for r in results:
        hours += r["hours"]
        parts = []
        for name, key in (("detector", "found"), ("robust-z", "baseline")):
            paging = [a for a in r[key] if a["severity"] != "info"]
            notes = len(r[key]) - len(paging)
            tot[name][0] += len(paging)
            tot[name][1] += notes
            what = "; ".join(
                f"{a['opened_at'][11:16]} {sorted(a['evidence']['abnormal'].items())[:2]}" for a in paging
            )
            parts.append(f"{name} {len(paging)} / {notes}" + (f" ({what})" if what else ""))
        print(f"  seed {r['seed']:3d}: " + " | ".join(parts))
    days = hours / 24
    for name, (p, n) in tot.items():
        print(
            f"pooled {name:9s}: {p} paging ({p / days:.1f}/day), {n} info notes ({n / days:.1f}/day) in {hours:g} h"
        )


def _verbose(r: dict[str, Any]) -> None:
    from otel_ai.timeutil import parse_instant

    for g in r["truth"]:
        hit = next((a for a in r["found"] if g["start"] - 300 <= parse_instant(a["opened_at"]).timestamp()
                    <= g["end"] + 300), None)  # fmt: skip
        base = next((a for a in r["baseline"] if g["start"] - 300 <= parse_instant(a["opened_at"]).timestamp()
                     <= g["end"] + 300), None)  # fmt: skip
        what = (f"{hit['severity']} {[x['service'] for x in hit['root_causes'][:3]]} {hit['evidence']['abnormal']}"
                if hit else "MISSED")  # fmt: skip
        bw = [x["service"] for x in base["root_causes"][:2]] if base else "MISSED"
        print(f"  {g['type']:12s} {g['level']:7s} {g['service'] or '-':12s} {g.get('volume', '')!s:>6s}/min "
              f"{g.get('affected', '')!s:>5s} hit -> "
              f"{what} | robust-z {bw}")  # fmt: skip
    for a in r["found"]:
        print(f"    found {a['opened_at'][11:16]}-{(a['closed_at'] or 'open')[11:16]} {a['severity']:8s} "
              f"{[x['service'] for x in a['root_causes'][:2]]} {sorted(a['evidence']['abnormal'])[:6]}")  # fmt: skip
    for k in r["detector"]["fa_idx"]:
        a = r["found"][k]
        print("  false alarm", a["opened_at"], a["severity"], a["evidence"]["abnormal"])


def report(results: list[dict[str, Any]], summarize: Any) -> None:
    hdr = (f"{'seed':>6s} {'detector':9s} {'level':8s} {'n':>3s} {'recall':>6s} {'prec':>5s} {'FA/day':>6s} "
           f"{'dly50':>5s} {'dly<5':>5s} {'AC@1':>5s} {'AC@3':>5s}")  # fmt: skip
    print("\n" + hdr)
    pooled: dict[str, dict[str, list]] = {"detector": {}, "robust-z": {}}
    fa: dict[str, float] = {"detector": 0.0, "robust-z": 0.0}
    notes: dict[str, int] = {"detector": 0, "robust-z": 0}
    days = 0.0
    per_seed: list[tuple[int, dict[tuple[str, str], float]]] = []
    for r in results:
        d = r["hours"] / 24
        days += d
        recall = {}
        for name in ("detector", "robust-z"):
            ev = r[name]
            fa[name] += ev["fa"]
            notes[name] += ev["notes"]
            for lvl in ("mild", "medium+severe"):
                rows = ev["per"][("all", lvl)]
                low = ev["per"][("low", lvl)]
                pooled[name].setdefault(lvl, []).extend(rows)
                pooled[name].setdefault("low " + lvl, []).extend(low)
                pooled[name].setdefault("obs " + lvl, []).extend(ev["per"][("obs", lvl)])
                pooled[name].setdefault("low obs " + lvl, []).extend(ev["per"][("lowobs", lvl)])
                for key, rows_v in ev["per"].items():
                    if key[0].startswith(("vol ", "spans ")) and key[1] == lvl:
                        pooled[name].setdefault(key[0] + " " + lvl, []).extend(rows_v)
                s, sl = summarize(rows, ev["fa_day"], d), summarize(low, ev["fa_day"], d)
                recall[(name, lvl)] = s["recall"]
                if lvl == "medium+severe":
                    recall[(name, "obs")] = summarize(ev["per"][("obs", lvl)], 0.0, 1.0)["recall"]
                print(f"{r['seed']:6d} {name:9s} {lvl[:8]:8s} {s['n']:3d} {s['recall']:6.2f} {s['precision']:5.2f} "
                      f"{ev['fa_day']:6.1f} {s['delay_med']:5.1f} {sl['delay_med']:5.1f} {s['ac1']:5.2f} "
                      f"{s['ac3']:5.2f}")  # fmt: skip
        per_seed.append((r["seed"], recall))
    print()
    for name in ("detector", "robust-z"):
        for lvl in ("mild", "medium+severe", "obs medium+severe"):
            s = summarize(pooled[name][lvl], fa[name] / days, days)
            sl = summarize(pooled[name]["low " + lvl], fa[name] / days, days)
            label = "observ." if lvl.startswith("obs") else lvl[:8]
            print(f"{'pooled':>6s} {name:9s} {label:8s} {s['n']:3d} {s['recall']:6.2f} {s['precision']:5.2f} "
                  f"{fa[name] / days:6.1f} {s['delay_med']:5.1f} {sl['delay_med']:5.1f} {s['ac1']:5.2f} "
                  f"{s['ac3']:5.2f}")  # fmt: skip
    print("\nFA/day counts paging alarms; non-paging `info` traffic notes outside any fault or benign event: "
          + ", ".join(f"{nm} {n} ({n / days:.1f}/day)" for nm, n in notes.items()))  # fmt: skip
    print("\nper fault kind (pooled, medium+severe): detector recall / AC@1 | robust-z recall / AC@1")
    kinds = sorted(
        {
            k
            for r in results
            for (k, lvl) in r["detector"]["per"]
            if k not in ("all", "low", "obs", "lowobs") and not k.startswith(("vol ", "spans "))
        }
    )
    for k in kinds:
        parts = []
        for name in ("detector", "robust-z"):
            rows = [
                x for r in results for lvl in ("medium", "severe") for x in r[name]["per"].get((k, lvl), [])
            ]
            s = summarize(rows, 0.0, 1.0)
            parts.append(f"{s['recall']:.2f} / {s['ac1']:.2f}")
        print(f"  {k:14s} n={len(rows):3d}  {parts[0]} | {parts[1]}")
    print(
        "\nby the target's volume (req/min; pooled, medium+severe): detector recall / AC@1 | robust-z recall / AC@1"
    )
    for b in ("≥5", "1-5", "0.3-1", "<0.3"):
        key = f"vol {b} medium+severe"
        if key in pooled["detector"]:
            d, z = (summarize(pooled[nm][key], 0.0, 1.0) for nm in ("detector", "robust-z"))
            print(
                f"  {b:6s} n={d['n']:3d}  {d['recall']:.2f} / {d['ac1']:.2f} | {z['recall']:.2f} / {z['ac1']:.2f}"
            )
    print("\nby the stored spans the fault changed (pooled, medium+severe; a single event never pages): "
          "detector recall | robust-z recall")  # fmt: skip
    for b in ("0", "1", "2", "≥3"):
        key = f"spans {b} medium+severe"
        if key in pooled["detector"]:
            d, z = (summarize(pooled[nm][key], 0.0, 1.0) for nm in ("detector", "robust-z"))
            print(f"  {b:6s} n={d['n']:3d}  {d['recall']:.2f} | {z['recall']:.2f}")
    targets(pooled, fa, days, per_seed, summarize)


def _targets_of(s: dict[str, Any], sl: dict[str, Any], fa_day: float) -> list[tuple[str, str, bool]]:
    """(target, figure, met) of one set of faults."""
    return [
        ("recall >= 0.9", f"{s['recall']:.2f}", s["recall"] >= 0.9),
        ("false alarms <= 1/day", f"{fa_day:.1f}", fa_day <= 1),
        ("median delay <= 3 min", f"{s['delay_med']:.1f}", s["delay_med"] <= 3),
        ("median delay under 5 req/min <= 10 min", f"{sl['delay_med']:.1f}", sl["delay_med"] <= 10),
        ("AC@1 >= 0.7", f"{s['ac1']:.2f}", s["ac1"] >= 0.7),
        ("AC@3 >= 0.9", f"{s['ac3']:.2f}", s["ac3"] >= 0.9),
    ]


def targets(pooled: dict[str, dict[str, list]], fa: dict[str, float], days: float,
            per_seed: list[tuple[int, dict[tuple[str, str], float]]], summarize: Any) -> None:  # fmt: skip
    """The targets block: evaluated on the observable faults (at least one stored span changed:
    a fault that changed none cannot be seen by any detector), the all-faults figures beside."""
    fa_day = fa["detector"] / days
    sets = {}
    for label, pre in (("observable", "obs "), ("all faults", "")):
        s = summarize(pooled["detector"][pre + "medium+severe"], fa_day, days)
        sl = summarize(pooled["detector"]["low " + pre + "medium+severe"], fa_day, days)
        sets[label] = (s["n"], _targets_of(s, sl, fa_day))
    n_obs, n_all = sets["observable"][0], sets["all faults"][0]
    print(f"\nTARGETS (medium+severe, pooled; detector) — on the observable faults (n={n_obs}); all faults "
          f"(n={n_all}) beside")  # fmt: skip
    print(f"  {'target':40s} {'observable':>16s} {'all faults':>16s}")
    for (name, fo, ok_o), (_, fa_, ok_a) in zip(sets["observable"][1], sets["all faults"][1], strict=True):
        print(
            f"  {name:40s} {fo:>6s} {'met' if ok_o else 'MISSED':>9s} {fa_:>6s} {'met' if ok_a else 'MISSED':>9s}"
        )
    for label, key in (("observable", "obs"), ("all faults", "medium+severe")):
        worse = [seed for seed, rec in per_seed if rec[("detector", key)] < rec[("robust-z", key)]]
        figs = " ".join(
            f"{seed}:{rec[('detector', key)]:.2f}/{rec[('robust-z', key)]:.2f}" for seed, rec in per_seed
        )
        verdict = "met" if not worse else "MISSED on seed " + ", ".join(map(str, worse))
        print(f"  recall >= robust-z on every seed ({label}): {verdict}  [detector/robust-z {figs}]")
