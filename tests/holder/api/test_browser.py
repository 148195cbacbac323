"""The transparency page as a member of the public sees it: in a real browser (the system's
headless Chromium through Playwright), served with the app's own answer and headers."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from test_app import submit  # type: ignore[import-not-found]

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary on PATH")

PAGE_URL = "https://service.example/transparency/page"
INJECT = """() => {
  const script = document.createElement('script');
  script.textContent = 'window.injected = true';
  const style = document.createElement('style');
  style.textContent = 'body { color: rgb(255, 0, 0) }';
  document.body.append(script, style);
  return window.injected === true;
}"""
"""What a script or style that escaping had missed would do on the page."""


def show(browser: Any, answer: Any) -> tuple[Any, list[str]]:
    """A browser page of `answer` (status, headers and body as the app sent them)."""
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.route(
        PAGE_URL,
        lambda route: route.fulfill(
            status=answer.status_code, headers=dict(answer.headers), body=answer.content
        ),
    )
    page.goto(PAGE_URL)
    return page, console


def test_the_transparency_page_shows_jobs_styled_and_runs_nothing_injected(service, browser):
    headers = service.auth("alice")
    job = service.wait(submit(service, headers)["id"], headers)
    page, console = show(browser, service.client.get("/transparency/page"))

    row = page.locator("tr", has_text=job["id"]).inner_text()
    assert "usual_residence" in row and "released" in row and "alice" in row
    heading = page.eval_on_selector("th", "th => getComputedStyle(th).backgroundColor")
    assert heading == "rgb(243, 245, 248)"  # the page's own style sheet applies
    assert not [text for text in console if "Content Security Policy" in text], console

    assert page.evaluate(INJECT) is False
    assert page.eval_on_selector("body", "b => getComputedStyle(b).color") == "rgb(34, 34, 34)"
    refused = [text for text in console if "Content Security Policy" in text]
    assert len(refused) == 2, console  # the script and the style, each refused


def test_without_the_policy_the_same_injection_runs(service, browser):
    # The check above can fail: the same page without the app's policy runs what is injected.
    answer = service.client.get("/transparency/page")
    del answer.headers["content-security-policy"]
    page, _ = show(browser, answer)
    assert page.evaluate(INJECT) is True


def test_the_parameters_an_analyst_chose_show_and_the_defaults_unfold(service, browser):
    headers = service.auth("alice")
    body = {"algorithm": "usual_residence", "parameters": {"min_nights": 3}}
    job = service.wait(submit(service, headers, body)["id"], headers)
    page, _ = show(browser, service.client.get("/transparency/page"))

    row = page.locator("tr", has_text=job["id"])
    shown = row.locator("td.params").inner_text()
    assert "min nights: 3" in shown and "more at their defaults" in shown
    assert "night start hour" not in shown  # folded away
    row.locator("summary").click()
    assert "night start hour: 19" in row.locator("td.params").inner_text()


def test_the_folded_defaults_open_from_the_keyboard_with_a_visible_focus(service, browser):
    headers = service.auth("alice")
    body = {"algorithm": "usual_residence", "parameters": {"min_nights": 3}}
    job = service.wait(submit(service, headers, body)["id"], headers)
    page, _ = show(browser, service.client.get("/transparency/page"))

    page.keyboard.press("Tab")  # the page's first control: the job's folded defaults
    focused = page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
        return [e.tagName, e.matches(':focus-visible'), s.outlineStyle]; }"""
    )
    assert focused[0] == "SUMMARY" and focused[1] and focused[2] != "none", focused
    page.keyboard.press("Enter")
    row = page.locator("tr", has_text=job["id"])
    assert "night start hour: 19" in row.locator("td.params").inner_text()


def test_the_page_reads_in_order_and_reflows_to_320_css_pixels(service, browser):
    headers = service.auth("alice")
    service.wait(submit(service, headers)["id"], headers)
    page, _ = show(browser, service.client.get("/transparency/page"))

    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.title() == "cellcensus transparency log"
    levels = page.eval_on_selector_all("h1, h2, h3", "hs => hs.map(h => h.tagName)")
    assert levels == ["H1", "H2"]
    # One main landmark holding the whole content, so a screen reader can jump to it.
    assert page.locator("main").count() == 1
    assert page.locator("main h1, main table, main h2").count() == 3
    assert page.locator("table caption").inner_text().startswith("1 job")
    scopes = page.eval_on_selector_all("th", "ths => ths.map(th => th.scope)")
    assert scopes and set(scopes) == {"col"}
    # A 1280-pixel window zoomed to 400 %: the text wraps, only the table scrolls in its block.
    page.set_viewport_size({"width": 320, "height": 800})
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    block = page.eval_on_selector(".wide", "b => getComputedStyle(b).overflowX")
    assert block == "auto"
