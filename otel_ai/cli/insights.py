"""``otel-ai insights [list|show ID|generate]`` and ``otel-ai ask "QUESTION"``: the daemon's insights."""

from __future__ import annotations

import argparse
from typing import Any

from otel_ai.cli.client import add_api_args, call, print_json, run

SEVERITY_MARK = {"critical": "!!!", "high": "!!", "medium": "!", "low": ".", "info": " "}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("insights", help="architectural insights found by the running daemon")
    add_api_args(p)
    _filters(p)
    p.set_defaults(func=run(cmd_list))
    s = p.add_subparsers(dest="insights_cmd")
    ls = s.add_parser("list", help="insights seen in a window, most severe first (default)")
    add_api_args(ls)
    _filters(ls)
    ls.set_defaults(func=run(cmd_list))
    show = s.add_parser("show", help="one insight with its evidence, claims and recommendations")
    add_api_args(show)
    show.add_argument("id", help="insight id (16 hex characters)")
    show.set_defaults(func=run(cmd_show))
    gen = s.add_parser(
        "generate", help="run the insight pipeline now over [since, until) (default: last hour)"
    )
    add_api_args(gen)
    _window(gen)
    gen.add_argument("--kind", help="only show insights of this kind")
    gen.set_defaults(func=run(cmd_generate))

    a = sub.add_parser("ask", help="ask a question; the answer cites the window's evidence or abstains")
    add_api_args(a)
    a.add_argument("question")
    _window(a)
    a.set_defaults(func=run(cmd_ask))


def _window(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="window start: RFC 3339 or a duration before now (default 1h)")
    p.add_argument("--until", help="window end: RFC 3339 or a duration before now (default now)")


def _filters(p: argparse.ArgumentParser) -> None:
    _window(p)
    p.add_argument("--kind", help="only this kind (n_plus_one, retry_storm, ...)")
    p.add_argument("--status", help="open (default), resolved, expired or all")
    p.add_argument("--service", help="only insights about this service/entity")
    p.add_argument("--severity", help="critical, high, medium, low or info")


def _figure(ev: dict[str, Any]) -> str:
    unit = f" {ev['unit']}" if ev.get("unit") else ""
    text = f"{ev['description']}"
    if ev.get("observed") is not None:
        text += f": {ev['observed']}{unit}"
        if ev.get("baseline") is not None:
            text += f" (baseline {ev['baseline']}{unit})"
    return text


def render_brief(ins: dict[str, Any]) -> str:
    ents = ", ".join(e["id"] for e in ins["entities"][:4]) or "-"
    lines = [
        f"{SEVERITY_MARK.get(ins['severity'], ' '):3} [{ins['severity']}] {ins['title']}",
        f"    {ins['kind']} · {ins['status']} · confidence {ins['confidence']:.2f} · {ents} · id {ins['id']}",
    ]
    for ev in ins["evidence"][:2]:
        lines.append(f"    - {_figure(ev)}")
    traces = [t for ev in ins["evidence"] for t in ev.get("trace_ids", [])][:3]
    if traces:
        lines.append(f"    traces: {', '.join(traces)}")
    if ins["recommendations"]:
        lines.append(f"    → {ins['recommendations'][0]['action']}")
    return "\n".join(lines)


def render_full(ins: dict[str, Any]) -> str:
    out = [
        f"{ins['title']}",
        f"id {ins['id']} · {ins['kind']} ({ins['category']}) · severity {ins['severity']} · "
        f"confidence {ins['confidence']:.2f} · {ins['status']}",
        f"seen {ins['first_seen']} … {ins['last_seen']}",
    ]
    ents = ", ".join(f"{e['kind']} {e['id']}" for e in ins["entities"]) or "-"
    out.append(f"entities: {ents}")
    rc = ins.get("root_cause")
    if rc:
        out.append(
            f"root cause: {rc['entity']['id']} ({rc['change_type']}) [{', '.join(rc['evidence_ids'])}]"
        )
    out += ["", ins["summary"] or "(no summary)", "", "Evidence:"]
    for ev in ins["evidence"]:
        out.append(f"  [{ev['id']}] {_figure(ev)}")
        if ev.get("trace_ids"):
            out.append(f"      traces: {', '.join(ev['trace_ids'])}")
    if ins["claims"]:
        out += ["", "Claims:"]
        out += [f"  - {c['text']} [{', '.join(c['evidence_ids'])}]" for c in ins["claims"]]
    if ins["recommendations"]:
        out += ["", "Recommendations:"]
        for r in ins["recommendations"]:
            out.append(f"  - {r['action']} [{', '.join(r['evidence_ids'])}]")
            if r.get("rationale"):
                out.append(f"      {r['rationale']}")
    llm = ins.get("llm") or {}
    if llm:
        note = (
            "cached"
            if llm.get("cached")
            else f"{llm.get('input_tokens', 0)} in, {llm.get('output_tokens', 0)} out"
        )
        out += ["", f"narrative: {llm.get('provider')}/{llm.get('model')} ({note}, "
                    f"${llm.get('cost_usd', 0):.6f}, prompt {llm.get('prompt_version')})"
                    + ("; abstained" if ins.get("abstained") else "")]  # fmt: skip
    return "\n".join(out)


def render_list(insights: list[dict[str, Any]]) -> str:
    if not insights:
        return "no insights in this window"
    return "\n\n".join(render_brief(i) for i in insights)


def cmd_list(args: argparse.Namespace) -> int:
    params = {"since": args.since, "until": args.until, "kind": args.kind, "status": args.status,
              "service": args.service, "severity": args.severity}  # fmt: skip
    data = call(args, "GET", "/api/v1/insights", params=params)
    print_json(data) if args.json else print(render_list(data["insights"]))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    data = call(args, "GET", f"/api/v1/insights/{args.id}")
    print_json(data) if args.json else print(render_full(data))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    data = call(args, "POST", "/api/v1/insights/generate", body={"since": args.since, "until": args.until},
                timeout=600.0)  # fmt: skip
    if args.kind:
        data = {"insights": [i for i in data["insights"] if i["kind"] == args.kind]}
    print_json(data) if args.json else print(render_list(data["insights"]))
    return 0


def render_answer(ans: dict[str, Any]) -> str:
    out = [ans["answer"]]
    if ans["claims"]:
        out.append("")
        out += [f"  - {c['text']} [{', '.join(c['evidence_ids'])}]" for c in ans["claims"]]
    if ans["insight_ids"]:
        out += ["", f"insights: {', '.join(ans['insight_ids'])}  (otel-ai insights show ID)"]
    llm = ans.get("llm") or {}
    who = (
        "no model called"
        if llm.get("provider") in (None, "none")
        else f"{llm['provider']}/{llm.get('model')}"
    )
    out += ["", f"-- {who}" + (", abstained" if ans["abstained"] else "")]
    return "\n".join(out)


def cmd_ask(args: argparse.Namespace) -> int:
    body = {"question": args.question, "since": args.since, "until": args.until}
    data = call(args, "POST", "/api/v1/insights/ask", body={k: v for k, v in body.items() if v is not None},
                timeout=300.0)  # fmt: skip
    print_json(data) if args.json else print(render_answer(data))
    return 0
