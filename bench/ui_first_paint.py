"""First paint of the web UI's service map against a running daemon (Debian's Chromium, headless).

    python bench/ui_first_paint.py --url http://127.0.0.1:8700 --runs 7 [--since 15m]

Each run opens ``#/map`` in a fresh browser context (cold cache) and reads the time from
navigation start to the map being drawn (``window.__otelAiFirstMap``, set by the page), then
reloads once in the same context (warm cache). Prints the median and the worst of each.
"""

from __future__ import annotations

import argparse
import statistics

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8700")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--since", default="15m")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    cold, warm, nodes = [], [], 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, args=ARGS)
        for _ in range(a.runs):
            ctx = browser.new_context(viewport={"width": 1440, "height": 900})
            page = ctx.new_page()
            for sample in (cold, warm):
                if sample is cold:
                    page.goto(f"{a.url}/#/map?since={a.since}")
                else:
                    page.reload()
                page.wait_for_selector("svg.map a.node", timeout=60000)
                sample.append(float(page.evaluate("window.__otelAiFirstMap")))
                nodes = page.locator("svg.map a.node").count()
            ctx.close()
        browser.close()
    for name, xs in (("cold", cold), ("warm", warm)):
        print(
            f"{name}: median {statistics.median(xs):.0f} ms, worst {max(xs):.0f} ms over {len(xs)} loads ({nodes} nodes)"
        )


if __name__ == "__main__":
    main()
