"""Evaluate the insight detectors on a labelled scenario set: planted patterns + clean controls.

For every seed, one app per pattern (``otel_ai.demo.patterns``: parameters drawn per seed) and
``--clean`` clean controls, each in its own hour of the recent past, with the period before it.

- ``--in-process``: the spans go through the daemon's writer into a temporary chDB store and the
  detectors run in this process (no LLM: grounding and abstentions are not measured).
- default (daemon): starts ``otel-ai serve`` on a temporary store and free ports, sends every app
  over OTLP/HTTP (protobuf; an instance marked JSON sends OTLP/JSON), then calls
  ``POST /api/v1/insights/generate`` for each app's window and scores the insights it answers,
  including grounding (claims whose citations are all evidence ids of the insight / all claims)
  and the share of abstained narratives. The anomaly kind needs the anomaly room's own
  detection and is scored in-process only.

A naive baseline (per-kind rules of thumb, over the same generated spans) is scored beside it.
Scoring: a planted pattern is detected when a finding of its kind names its entity. A finding is
a true positive when it matches a planted pattern of the app; one of a kind that the planted
pattern implies (``App.consequences``, e.g. an N+1 loop also dominates the critical path) is not
counted either way; store notes capped at ``low`` (a database on most paths) are advisory and
reported apart; everything else is a false positive.

    .venv/bin/python bench/insights_eval.py [--in-process] [--seeds 5] [--clean 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.insights_baseline import baseline
from otel_ai.demo import patterns

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


@dataclass
class Found:
    kind: str
    entities: set[str]
    severity: str | None = None
    cap: str | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)
    evidence_ids: set[str] = field(default_factory=set)
    abstained: bool = False
    store_note: bool = False  # a possible single point of failure on a database, queue or external
    primary: str = ""  # the first entity: where the finding is (the parent span's service, …)


def _names(app: patterns.App, f: Found, entity: str) -> bool:
    """Whether ``f`` is about ``entity``: named anywhere, or, for the kinds a planted slowdown also
    causes at the callers (``App.elsewhere``), located there."""
    if f.kind in getattr(app, "elsewhere", ()):
        return f.primary == entity
    return entity in f.entities


@dataclass
class Score:
    planted: Counter[str] = field(default_factory=Counter)
    detected: Counter[str] = field(default_factory=Counter)
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    advisory: int = 0
    clean_medium: int = 0
    clean_any: int = 0
    clean_apps: int = 0
    negatives: Counter[str] = field(default_factory=Counter)  # near misses planted, per kind
    near_fp: Counter[str] = field(default_factory=Counter)  # ... reported anyway
    fp_examples: list[str] = field(default_factory=list)

    def add(self, app: patterns.App, found: list[Found]) -> None:
        negative = getattr(app, "negative", None)
        if negative:
            self.negatives[negative] += 1
        elif not app.planted:
            self.clean_apps += 1
        for p in app.planted:
            self.planted[p.kind] += 1
            if any(f.kind == p.kind and _names(app, f, p.entity) for f in found):
                self.detected[p.kind] += 1
        for f in found:
            near = getattr(app, "near", None)
            if any(f.kind == p.kind and _names(app, f, p.entity) for p in app.planted):
                self.tp[f.kind] += 1
            elif f.kind in app.consequences:
                continue
            elif f.kind in getattr(app, "elsewhere", ()) and not (
                near is not None and _names(app, f, near.entity)
            ):
                continue  # at a caller of the slowed service: a consequence
            elif f.store_note:
                self.advisory += 1
            else:
                self.fp[f.kind] += 1
                if f.kind == negative:
                    self.near_fp[f.kind] += 1
                if len(self.fp_examples) < 12:
                    self.fp_examples.append(f"{app.name}/{app.seed}: {f.kind} {sorted(f.entities)[:3]}")
                if not app.planted and not negative:
                    self.clean_any += 1
                    if f.severity is not None and SEVERITY_RANK.get(f.severity, 9) <= 2:
                        self.clean_medium += 1


def random_set(seeds: list[int], clean: int, window: timedelta, traces: int | None) -> list[patterns.App]:
    """Per seed: a random app per kind with it planted over the threshold, one per kind with a near
    miss (must not be reported), and ``clean`` clean random apps (see ``otel_ai.testing.insight_apps``)."""
    from otel_ai.testing import insight_apps

    plan = [(k, True) for k in insight_apps.KINDS] + [(k, False) for k in insight_apps.NEGATIVE_KINDS]
    plan += [("clean", True)] * clean
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=len(seeds) * len(plan) + 2
    )
    apps: list[patterns.App] = []
    for seed in seeds:
        for i, (kind, positive) in enumerate(plan):
            app_seed = seed * 100 + i if kind == "clean" else seed
            start = base + timedelta(hours=len(apps))
            apps.append(insight_apps.build(kind, app_seed, start, window, positive=positive, traces=traces))
    return apps


def scenario_set(seeds: int, clean: int, window: timedelta, traces: int | None) -> list[patterns.App]:
    kinds = list(patterns.PATTERNS)
    total = seeds * (len(kinds) + clean)
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=total + 2)
    apps, slot = [], 0
    for seed in range(seeds):
        for name in [*kinds, *["clean"] * clean]:
            app_seed = seed * 100 + slot if name == "clean" else seed
            apps.append(patterns.build(name, app_seed, base + timedelta(hours=slot), window, traces=traces))
            slot += 1
    return apps


# -- in-process ---------------------------------------------------------------------------------
def run_in_process(apps: list[patterns.App]) -> list[list[Found]]:
    from otel_ai.analysis.insights.config import InsightsConfig
    from otel_ai.analysis.insights.detectors import build_detectors
    from otel_ai.analysis.insights.model import DetectContext, Window
    from otel_ai.storage.writer import TelemetryWriter
    from otel_ai.testing.stores import storage_at

    try:
        from otel_ai.analysis.insights import scoring  # the pipeline's severity, when present
    except ImportError:
        scoring = None  # type: ignore[assignment]
    cfg = InsightsConfig()
    st = storage_at(f"chdb://{tempfile.mkdtemp(prefix='insights-eval-')}/store", "otel")
    st.start()
    writer = TelemetryWriter(st)
    for app in apps:
        writer.write(patterns.payloads(app))
    detectors = build_detectors(cfg.detectors)
    out = []
    for app in apps:
        ctx = DetectContext(st, Window(app.start, app.end), anomalies=app.anomalies)
        found = []
        for d in detectors:
            for f in d.detect(ctx):
                scfg = getattr(cfg, "scoring", None)
                sev = scoring.severity(f, scfg) if scoring is not None and scfg is not None else None
                store = f.kind == "single_point_of_failure" and f.entities[0].kind != "service"
                found.append(Found(f.kind, {e.id for e in f.entities}, sev, f.severity_cap, store_note=store,
                                   primary=f.entities[0].id if f.entities else ""))  # fmt: skip
        out.append(found)
    return out


# -- through the daemon ---------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _json_body(req: Any) -> bytes:
    """OTLP/JSON of a request (hex ids, as the spec requires, not protobuf-JSON base64)."""
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(req, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = base64.b64decode(sp[k]).hex()
                for link in sp.get("links", []):
                    for k in ("traceId", "spanId"):
                        link[k] = base64.b64decode(link[k]).hex()
    return json.dumps(doc).encode()


def run_daemon(apps: list[patterns.App]) -> list[list[Found]]:
    import httpx

    root = Path(tempfile.mkdtemp(prefix="insights-eval-daemon-"))
    http, api = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "otel_ai", "serve", "--storage", f"chdb://{root}/store",
           "--otlp-grpc", f"127.0.0.1:{_free_port()}", "--otlp-http", http, "--api", api]  # fmt: skip
    log = open(root / "daemon.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = httpx.Client(timeout=120)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if client.get(f"http://{api}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        sent = 0
        for app in apps:
            for encoding, req, n in app.requests():
                if encoding == "json":
                    body, ctype = _json_body(req), "application/json"
                else:
                    body, ctype = req.SerializeToString(), "application/x-protobuf"
                r = client.post(f"http://{http}/v1/traces", content=body, headers={"Content-Type": ctype})
                r.raise_for_status()
                sent += n
        _wait_stored(client, api, apps, sent)
        out = []
        for app in apps:
            r = client.post(f"http://{api}/api/v1/insights/generate",
                            json={"since": _iso(app.start), "until": _iso(app.end)})  # fmt: skip
            if r.status_code == 404:
                raise SystemExit("the daemon has no POST /api/v1/insights/generate yet; use --in-process")
            r.raise_for_status()
            found = []
            for ins in r.json()["insights"]:
                ents = ins.get("entities", [])
                store = (
                    ins["kind"] == "single_point_of_failure" and bool(ents) and ents[0]["kind"] != "service"
                )
                found.append(Found(ins["kind"], {e["id"] for e in ents}, ins.get("severity"), None,
                                   ins.get("claims", []), {e["id"] for e in ins.get("evidence", [])},
                                   bool(ins.get("abstained")), store_note=store,
                                   primary=ents[0]["id"] if ents else ""))  # fmt: skip
            out.append(found)
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_stored(client: Any, api: str, apps: list[patterns.App], sent: int) -> None:
    """Until the services endpoint over all apps' time counts every span (bounded wait)."""
    since, until = (
        _iso(min(a.start for a in apps) - (apps[0].end - apps[0].start)),
        _iso(max(a.end for a in apps)),
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        r = client.get(f"http://{api}/api/v1/services", params={"since": since, "until": until})
        if r.status_code == 200 and sum(s["span_count"] for s in r.json()["services"]) >= sent:
            return
        time.sleep(1)
    print("warning: not every span was stored after 180 s", file=sys.stderr)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- report ---------------------------------------------------------------------------------------
def report(name: str, s: Score, kinds: list[str]) -> dict[str, Any]:
    rows = {}
    print(f"\n{name}")
    print(f"  {'kind':26} {'recall':>8} {'precision':>10}   planted  tp  fp  near-misses reported")
    for kind in kinds:
        n = s.planted[kind]
        recall = s.detected[kind] / n if n else float("nan")
        denom = s.tp[kind] + s.fp[kind]
        precision = s.tp[kind] / denom if denom else float("nan")
        rows[kind] = {"recall": round(recall, 3), "precision": round(precision, 3), "planted": n,
                      "tp": s.tp[kind], "fp": s.fp[kind], "near": s.negatives[kind], "near_fp": s.near_fp[kind]}  # fmt: skip
        near = f"{s.near_fp[kind]}/{s.negatives[kind]}" if s.negatives[kind] else "-"
        print(
            f"  {kind:26} {recall:8.2f} {precision:10.2f}   {n:7d} {s.tp[kind]:3d} {s.fp[kind]:3d}  {near:>8}"
        )
    print(f"  false findings on {s.clean_apps} clean controls: {s.clean_any} (medium+: {s.clean_medium}); "
          f"advisory store notes: {s.advisory}")  # fmt: skip
    for ex in s.fp_examples:
        print(f"    fp: {ex}")
    return {
        "kinds": rows,
        "clean_false": s.clean_any,
        "clean_medium_plus": s.clean_medium,
        "advisory": s.advisory,
        "pooled": pooled(s),
    }


def pooled(s: Score) -> dict[str, float | None]:
    """Recall and precision over every kind together."""
    planted, tp, fp = sum(s.planted.values()), sum(s.tp.values()), sum(s.fp.values())
    return {"recall": round(sum(s.detected.values()) / planted, 3) if planted else None,
            "precision": round(tp / (tp + fp), 3) if tp + fp else None}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--in-process", action="store_true", help="run the detectors here, not through the daemon"
    )
    ap.add_argument("--source", choices=("patterns", "random"), default="patterns",
                    help="patterns: the planted shop apps; random: random apps nobody tuned on")  # fmt: skip
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="random source: seeds first..first+seeds-1")
    ap.add_argument("--clean", type=int, default=2, help="clean controls per seed")
    ap.add_argument("--window-min", type=int, default=15)
    ap.add_argument("--traces", type=int, default=None, help="traces per window (default: drawn, 150-300)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    t0 = time.monotonic()
    window = timedelta(minutes=args.window_min)
    if args.source == "random":
        from otel_ai.testing import insight_apps

        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        apps = random_set(seeds, args.clean, window, args.traces)
        kinds = list(insight_apps.KINDS)
        what = (f"seeds {seeds}: {len(kinds)} kinds planted + {len(insight_apps.NEGATIVE_KINDS)} near misses + "
                f"{args.clean} clean per seed")  # fmt: skip
    else:
        apps = scenario_set(args.seeds, args.clean, window, args.traces)
        kinds = list(patterns.PATTERNS)
        what = f"{args.seeds} seeds x ({len(kinds)} patterns + {args.clean} clean)"
    spans = sum(len(a.spans) for a in apps)
    print(f"{len(apps)} apps ({what}), {spans} spans; built in {time.monotonic() - t0:.1f} s")
    t1 = time.monotonic()
    results = run_in_process(apps) if args.in_process else run_daemon(apps)
    mode = "in-process detectors" if args.in_process else "daemon (POST /api/v1/insights/generate)"
    ours, base = Score(), Score()
    per_seed: dict[int, tuple[Score, Score]] = {}
    claims = grounded = abstained = insights = 0
    for app, found in zip(apps, results, strict=True):
        if app.name == "anomaly" and not args.in_process:
            continue
        naive = baseline(app)
        ours.add(app, found)
        base.add(app, naive)
        seed_key = app.seed // 100 if app.name == "clean" else app.seed  # clean controls: seed * 100 + i
        mine, theirs = per_seed.setdefault(seed_key, (Score(), Score()))
        mine.add(app, found)
        theirs.add(app, naive)
        for f in found:
            insights += 1
            abstained += f.abstained
            for c in f.claims:
                claims += 1
                cited = c.get("evidence_ids") or []
                grounded += bool(cited) and set(cited) <= f.evidence_ids
    figures: dict[str, Any] = {"source": args.source, "mode": mode, "apps": len(apps), "spans": spans,
                               "seconds": round(time.monotonic() - t1, 1),
                               "detectors": report(f"detectors, {mode}", ours, kinds),
                               "baseline": report("naive baseline", base, kinds)}  # fmt: skip
    print(
        "\nper seed (all kinds pooled): detectors recall / precision / clean medium+ | baseline recall / precision"
    )
    figures["per_seed"] = {}
    for seed, (mine, theirs) in sorted(per_seed.items()):
        a, b = pooled(mine), pooled(theirs)
        figures["per_seed"][seed] = {"detectors": a, "baseline": b, "clean_medium_plus": mine.clean_medium}
        print(f"  seed {seed:4d}: {a['recall']} / {a['precision']} / {mine.clean_medium}  |  "
              f"{b['recall']} / {b['precision']}")  # fmt: skip
    if not args.in_process:
        figures["grounding"] = grounded / claims if claims else None
        figures["abstained_share"] = abstained / insights if insights else None
        print(f"\ngrounding: {grounded}/{claims} claims cite only the insight's evidence; "
              f"abstained: {abstained}/{insights} insights")  # fmt: skip
    print(f"\nran in {figures['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
