"""The HTML page rendered by headless Chromium (Debian's, driven by Playwright): it loads with no
request leaving the page, shows its charts and tables, and its screenshot is not blank."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from otel_ai.reports.render import to_html

CHROMIUM = os.environ.get("OTEL_AI_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[dev]')"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set OTEL_AI_CHROMIUM)"
    return None


PIXEL_STATS = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const counts = new Map(); let n = 0;
  for (let i = 0; i < d.length; i += 4 * 7) {
    n++; const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  return [counts.size, 1 - Math.max(...counts.values()) / n];
}"""


def test_html_renders_in_chromium(report: dict[str, Any], service: Any, tmp_path: Path) -> None:
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    html = to_html(service.get(report["id"]))
    page_file = tmp_path / "report.html"
    page_file.write_text(html, encoding="utf-8")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            assert page.locator("svg").count() >= 3 * 4  # 3 charts per top service
            assert "INCIDENT" in page.locator("header").inner_text()
            assert page.locator("table").count() >= 4
            shot = page.screenshot(full_page=True)
            # Decode the screenshot itself (in a blank page, through a canvas): how many colours, and
            # the share of pixels that are not the most common (background) colour.
            probe = browser.new_page()
            colours, ink = probe.evaluate(
                PIXEL_STATS, "data:image/png;base64," + base64.b64encode(shot).decode()
            )
        finally:
            browser.close()
    out = Path(os.environ.get("OTEL_AI_REPORT_SCREENSHOT", str(tmp_path / "report.png")))
    out.write_bytes(shot)
    assert requests == [page_file.as_uri()], f"the page made requests of its own: {requests[1:]}"
    assert colours > 20 and ink > 0.15, f"screenshot looks blank: {colours} colours, {ink:.0%} non-background"
