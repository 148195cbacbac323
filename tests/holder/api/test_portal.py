"""The web portal as its users work with it: in a real browser (the system's headless Chromium
through Playwright), every request of the page answered by the app in process, headers and all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from test_app import JOB, submit  # type: ignore[import-not-found]
from tiny_store import PASSWORD, SCOPE  # type: ignore[import-not-found]

from cellcensus.holder.api.users import Role
from cellcensus.holder.enclave.state import audit

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary on PATH")

ORIGIN = "https://service.example"
PORTAL = f"{ORIGIN}/portal/"
SESSION_KEY = "cellcensus.session"
PAYLOAD = "<img src=x onerror=window.injected=1><script>window.injected=1</script>"
"""Markup that runs a script if the page ever parses a field as HTML."""

Tamper = Callable[[str, Any], Any]
"""Changes the JSON body the app answered a GET of a path with, before the page gets it."""


class Portal:
    """A browser tab on the portal, its requests answered by `service`'s app."""

    def __init__(self, browser: Any, service: Any, tamper: Tamper | None = None) -> None:
        self.service = service
        self.tamper = tamper
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.holding: Callable[[str], bool] = lambda path: False
        self.held: list[Any] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.route(f"{ORIGIN}/**", self._answer)
        self.page.goto(PORTAL)

    def _answer(self, route: Any) -> None:
        request = route.request
        url = urlsplit(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        headers = {
            name: value
            for name, value in request.all_headers().items()
            if name.lower() in {"authorization", "content-type", "accept"}
        }
        answer = self.service.client.request(
            request.method,
            path,
            headers=headers,
            content=request.post_data_buffer,
            follow_redirects=False,
        )
        body = answer.content
        sent = dict(answer.headers)
        json_answer = sent.get("content-type", "").startswith("application/json")
        if self.tamper and request.method == "GET" and answer.is_success and json_answer:
            body = json.dumps(self.tamper(url.path, answer.json())).encode()
            sent["content-length"] = str(len(body))
        if self.holding(path):  # answered now, arriving late: when the test says
            self.held.append((route, answer.status_code, sent, body))
            return
        route.fulfill(status=answer.status_code, headers=sent, body=body)

    def answer_held(self) -> None:
        self.holding = lambda path: False
        held, self.held = self.held, []
        for route, status, headers, body in held:
            route.fulfill(status=status, headers=headers, body=body)

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.page.get_by_label("User name").fill(username)
        self.page.get_by_label("Password", exact=True).fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def row(self, job_id: str) -> Any:
        return self.page.locator(f"#jobs tr[data-job='{job_id}']")

    def submit(self, **fields: str) -> None:
        for name, value in fields.items():
            self.page.get_by_label(name, exact=True).fill(value)
        self.page.get_by_role("button", name="Submit the job").click()

    def newest_job(self) -> str:
        rows = self.page.locator("#jobs tbody tr")
        sync_api.expect(rows.first).to_be_visible()
        return str(rows.first.get_attribute("data-job"))

    def session(self) -> Any:
        return self.page.evaluate(f"() => sessionStorage.getItem('{SESSION_KEY}')")

    def policy_refusals(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def portal(browser: Any) -> Iterator[Callable[..., Portal]]:
    opened: list[Portal] = []

    def open_portal(service: Any, tamper: Tamper | None = None) -> Portal:
        opened.append(Portal(browser, service, tamper))
        return opened[-1]

    yield open_portal
    for tab in opened:
        tab.close()


def test_an_analyst_submits_a_job_downloads_its_csv_and_signs_out(service, portal):
    tab = portal(service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    expect(page.locator("#account")).to_contain_text("Signed in as alice (analyst)")
    budget = page.locator("#budget tbody tr")
    expect(budget).to_have_count(1)
    expect(budget.locator("td")).to_have_text(["default", "2", "0"])

    page.get_by_label("Algorithm").select_option("usual_residence")
    tab.submit(**{"min nights": "3"})
    job_id = tab.newest_job()
    expect(tab.row(job_id).locator("td.status")).to_have_text("released", timeout=90_000)

    alice = service.auth("alice")
    job = service.client.get(f"/jobs/{job_id}", headers=alice).json()
    assert job["status"] == "released" and job["parameters"]["min_nights"] == 3
    # Only the changed parameter shows; the others fold under their count.
    params = tab.row(job_id).locator("td.params")
    expect(params).to_contain_text("min nights: 3")
    expect(params.locator("summary")).to_have_text("15 more at their defaults")
    left = service.client.get("/me", headers=alice).json()["budget"][0]["epsilon_left"]
    assert left < 2
    expect(budget.locator("td").nth(1)).to_have_text(f"{left:g}")
    expect(page.locator("#notice")).to_contain_text(f"Job {job_id}")

    # The result read in the page: the holder's facts and the rules, then the table.
    page.get_by_role("button", name=f"View the result of job {job_id}").click()
    view = page.locator("#release-view")
    expect(view.get_by_role("heading")).to_be_focused()
    expect(view.get_by_role("heading")).to_have_text(f"The result of job {job_id}")
    result = service.client.get(f"/jobs/{job_id}/result", params={"format": "json"}, headers=alice)
    released = result.json()
    names, values = view.locator("dt").all_inner_texts(), view.locator("dd").all_inner_texts()
    facts = dict(zip(names, values, strict=True))
    assert facts["period start"] == released["published"]["period"]["start"]
    assert float(facts["market share"]) == released["published"]["market_share"]
    assert float(facts["disclosure min count"]) == released["provenance"]["policy"]["min_count"]
    expect(view.locator("thead th")).to_have_text([c["name"] for c in released["columns"]])
    expect(view.locator("tbody tr")).to_have_count(len(released["table"]))

    # On a phone's width each job's cells stack, named: its status and result stay in view.
    page.set_viewport_size({"width": 390, "height": 900})
    status = tab.row(job_id).locator("td.status")
    box = status.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390, box
    assert status.get_attribute("data-label") == "Status"
    button = page.get_by_role("button", name=f"Download the result of job {job_id} as CSV")
    shown = button.bounding_box()
    assert shown is not None and shown["x"] + shown["width"] <= 390, shown
    page.set_viewport_size({"width": 1280, "height": 900})

    with page.expect_download() as started:
        page.get_by_role("button", name=f"Download the result of job {job_id} as CSV").click()
    download = started.value
    assert download.suggested_filename == f"{job_id}.csv"
    fetched = service.client.get(f"/jobs/{job_id}/result", params={"format": "csv"}, headers=alice)
    saved = Path(download.path()).read_text()
    assert saved == fetched.text
    assert saved.splitlines()[0].startswith("area_code,device_count")
    assert len(saved.splitlines()) == 4  # the header and the tiny store's three areas

    token = json.loads(tab.session())["token"]
    assert service.client.get("/me", headers={"Authorization": f"Bearer {token}"}).is_success
    assert tab.context.cookies() == []  # the token never was a cookie
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#analyst")).to_be_hidden()
    assert page.locator("#budget tbody tr, #jobs tbody tr").count() == 0  # theirs: gone
    # A blank form, not their name, and the password emptied is not marked as an error.
    expect(page.get_by_label("User name")).to_have_value("")
    borders = page.evaluate(
        "() => ['username', 'password']"
        ".map((id) => getComputedStyle(document.getElementById(id)).borderColor)"
    )
    assert borders == ["rgb(136, 136, 136)"] * 2, borders  # portal.css's grey, not its red
    assert (
        page.locator("#release-view").inner_text() == "" and not page.locator("#quota").inner_text()
    )
    assert tab.session() is None
    refused = service.client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert page.evaluate("() => sessionStorage.length") == 0
    assert not tab.policy_refusals(), tab.console


def test_the_services_refusals_show_word_for_word_and_are_announced(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    alert = page.get_by_role("alert")

    tab.sign_in("alice", "not the password")
    expect(alert).to_contain_text("Signing in failed.")
    expect(alert).to_contain_text("unknown user name or wrong password")
    expect(page.locator("#analyst")).to_be_hidden()
    tab.sign_in("alice")
    expect(page.locator("#account")).to_be_visible()
    expect(alert).to_be_empty()

    alice = idle_service.auth("alice")
    body = {"algorithm": "usual_residence", "parameters": {"min_nights": 999}}
    said = idle_service.client.post("/jobs", json=body, headers=alice).json()["detail"]
    assert "366" in said
    page.get_by_label("Algorithm").select_option("usual_residence")
    tab.submit(**{"min nights": "999"})
    expect(alert).to_contain_text("The service refused the job.")
    expect(alert.locator(".said")).to_have_text(said)
    assert page.evaluate("() => document.activeElement.id") == "problem"

    # Out of the analyst's scopes (municipality only): the 403's words, as they are.
    page.get_by_label("min nights", exact=True).fill("2")
    page.get_by_label("Area level").select_option("province")
    page.get_by_role("button", name="Submit the job").click()
    expect(alert.locator(".said")).to_contain_text("your scopes do not allow usual_residence")
    expect(alert).to_contain_text("403 Forbidden")
    assert idle_service.client.get("/jobs", headers=alice).json()["jobs"] == []
    expect(page.locator("#no-jobs")).to_be_visible()


def test_an_empty_sign_in_field_is_said_and_nothing_is_sent(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    sent: list[str] = []
    page.on("request", lambda request: sent.append(urlsplit(request.url).path))
    alert = page.get_by_role("alert")
    focused = "() => document.activeElement.id"

    page.get_by_role("button", name="Sign in").click()
    expect(alert).to_contain_text("Not signed in.")
    expect(alert.locator(".said")).to_have_text("Type your user name and password.")
    assert page.evaluate(focused) == "username"
    page.get_by_label("User name").fill("alice")
    page.get_by_role("button", name="Sign in").click()
    expect(alert.locator(".said")).to_have_text("Type your password.")
    assert page.evaluate(focused) == "password"
    assert "/auth/token" not in sent
    audit = idle_service.client.get("/audit", headers=idle_service.auth("auditor")).json()
    assert not [entry for entry in audit["entries"] if entry["action"] == "login.failed"]

    tab.sign_in("alice")
    expect(page.locator("#account")).to_contain_text("Signed in as alice (analyst)")
    expect(alert).to_be_empty()


def test_script_in_job_or_algorithm_fields_shows_as_text_and_never_runs(idle_service, portal):
    def tamper(path: str, body: Any) -> Any:
        if path == "/algorithms":  # as if a certified submission carried markup
            first = body["algorithms"][0]
            first["summary"] = PAYLOAD
            first["name"] = f"x{PAYLOAD}"
            first["parameters_schema"]["properties"]["start"]["description"] = PAYLOAD
        if path == "/jobs":  # every text field of a job the page shows
            for job in body["jobs"]:
                job.update(error=PAYLOAD, stage=PAYLOAD, project=PAYLOAD)
                job["parameters"]["filters"]["m2m_tacs"] = [PAYLOAD]
        return body

    alice = idle_service.auth("alice")
    job_id = submit(idle_service, alice)["id"]  # stays queued: no workers
    tab = portal(idle_service, tamper)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")

    row = tab.row(job_id)
    expect(row.locator("td.params")).to_contain_text(f"filters, m2m tacs: {PAYLOAD}")
    expect(row.locator("td.status")).to_contain_text(PAYLOAD)
    expect(row).to_contain_text(f"municipality{PAYLOAD}")
    catalogue = page.locator("#catalogue article").first
    expect(catalogue.locator("h3")).to_have_text(f"x{PAYLOAD}")
    expect(catalogue).to_contain_text(PAYLOAD)

    # The service's own refusal quotes what the analyst typed: shown as text too.
    page.get_by_label("Algorithm").select_option("usual_residence")
    tab.submit(**{"filters, m2m tacs": PAYLOAD})
    expect(page.get_by_role("alert").locator(".said")).to_contain_text(f"(got '{PAYLOAD}')")

    assert page.evaluate("() => window.injected") is None
    assert page.locator("img, main script").count() == 0
    assert not tab.policy_refusals(), tab.console  # nothing was even tried

    # Were a string ever given to innerHTML, the policy's Trusted Types would refuse it.
    refused = page.evaluate(
        "() => { try { document.body.innerHTML = '<b>x</b>'; return 'parsed'; }"
        " catch (error) { return error.name; } }"
    )
    assert refused == "TypeError"


def test_the_portal_works_from_the_keyboard_with_labels_and_a_visible_focus(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "username"
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#analyst")).to_be_visible()
    expect(page.locator("#budget tbody tr")).to_have_count(1)
    expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    focused = page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
        return [e.id, e.matches(':focus-visible'), s.outlineStyle]; }"""
    )
    assert focused[0] == "sign-out" and focused[1] and focused[2] != "none", focused

    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.labels.length === 0).map(e => e.id)"""
    )
    assert unlabelled == []
    described = page.evaluate(
        """() => document.getElementById(document.querySelector('[data-path]')
        .getAttribute('aria-describedby')).textContent"""
    )
    assert "Leave empty for the default" in described
    levels = page.eval_on_selector_all("h1, h2", "hs => hs.map(h => h.tagName + h.textContent)")
    assert levels[0] == "H1Portal" and "H2Submit a job" in levels
    assert page.locator("main").count() == 1
    assert page.get_by_role("alert").count() == 1 and page.get_by_role("status").count() == 1

    # A job submitted from the keyboard: the button, disabled until the answer, keeps the focus.
    page.get_by_role("button", name="Submit the job").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_contain_text("submitted")
    expect(page.get_by_role("button", name="Submit the job")).to_be_focused()

    page.set_viewport_size({"width": 320, "height": 800})
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


def test_a_signed_in_tab_keeps_its_session_until_the_token_is_refused(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    expect(page.locator("#budget tbody tr")).to_have_count(1)
    page.reload()  # the token lives in this tab's session storage
    expect(page.locator("#account")).to_contain_text("alice")
    expect(page.locator("#budget tbody tr")).to_have_count(1)

    kept = json.loads(tab.session())
    token = kept["token"]
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert kept["expiresAt"] == exp * 1000  # the answer's Unix seconds, as Date.now() counts
    logout = idle_service.client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204  # as if signed out in another tab
    page.get_by_role("button", name="Refresh the list").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("the access token was revoked")
    assert tab.session() is None


def test_a_kept_session_past_its_tokens_expiry_signs_in_again(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    expect(page.locator("#budget tbody tr")).to_have_count(1)
    page.evaluate(
        """key => {
            const kept = JSON.parse(sessionStorage.getItem(key));
            kept.expiresAt = Date.now() - 1000;
            sessionStorage.setItem(key, JSON.stringify(kept));
        }""",
        SESSION_KEY,
    )
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert tab.session() is None


def test_the_index_links_the_portal_served_with_its_own_policy(idle_service):
    client = idle_service.client
    assert client.get("/").json()["links"]["portal"] == "/portal/"
    moved = client.get("/portal", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == "portal/"
    types = {
        "/portal/": "text/html",
        "/portal/portal.js": "text/javascript",
        "/portal/portal.css": "text/css",
    }
    for path, media in types.items():
        answer = client.get(path)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "require-trusted-types-for 'script'" in policy
        assert "form-action 'none'" in policy and "frame-ancestors 'none'" in policy
    page = client.get("/portal/").text
    assert '<script type="module" src="portal.js"></script>' in page
    assert "style=" not in page and "<style" not in page and "onclick" not in page
    # Everywhere else no script runs, as before.
    for path in ("/", "/transparency/page", "/portal/missing.js"):
        policy = client.get(path).headers["content-security-policy"]
        assert "script-src" not in policy and "connect-src" not in policy, path


def test_package_data_ships_every_file_the_portal_serves():
    import tomllib
    from fnmatch import fnmatch

    from cellcensus.holder.api.routes.portal import FILES

    root = Path(__file__).parents[3]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["cellcensus"]
    served = [f"holder/api/portal/{name}" for name, _ in FILES.values()]
    assert all((root / "src" / "cellcensus" / path).is_file() for path in served)
    assert [path for path in served if not any(fnmatch(path, p) for p in patterns)] == []


def test_a_steward_sees_each_analysts_budget_given_and_left(service, portal):
    alice, steward = service.auth("alice"), service.auth("steward")
    job = service.wait(submit(service, alice)["id"], alice)
    assert job["status"] == "released"

    tab = portal(service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    rows = page.locator("#budgets tbody tr")
    expect(rows).to_have_count(2)  # alice and bob, one project each
    cells = [row.locator("td").all_inner_texts() for row in rows.all()]
    left = 2.0 - job["epsilon"]
    assert cells[0][:3] == ["alice", "default", "2"]
    assert float(cells[0][3]) == pytest.approx(left, abs=1e-3) and left < 2
    assert cells[1][:4] == ["bob", "default", "2", "2"]

    grant = {"epsilon": 1.5, "delta": 1e-6, "project": "census-2011"}
    assert service.client.put("/users/bob/budget", json=grant, headers=steward).is_success
    page.get_by_role("button", name="Refresh the budgets").click()
    expect(page.locator("#notice")).to_have_text("The budgets are up to date.")
    expect(rows).to_have_count(3)
    assert rows.nth(1).locator("td").all_inner_texts()[:4] == ["bob", "census-2011", "1.5", "1.5"]
    assert not tab.policy_refusals(), tab.console


def test_a_steward_sets_a_budget_and_a_refused_value_is_said_word_for_word(idle_service, portal):
    steward = idle_service.auth("steward")
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    rows = page.locator("#budgets tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_label("Analyst", exact=True).select_option("bob")
    page.get_by_label("Project", exact=True).fill("census-2011")
    page.get_by_label("ε (epsilon) in all").fill("1.5")
    page.get_by_label("δ (delta) in all").fill("1e-6")
    page.get_by_role("button", name="Set the budget").click()
    expect(page.locator("#notice")).to_have_text(
        "The budget of bob in project census-2011 is set: ε 1.5 and δ 0.000001 left."
    )
    expect(rows).to_have_count(3)
    assert rows.nth(1).locator("td").all_inner_texts() == [
        "bob",
        "census-2011",
        "1.5",
        "1.5",
        "0.000001",
        "0.000001",
    ]
    budgets = idle_service.client.get("/users/bob/budget", headers=steward).json()["budgets"]
    given = {entry["project"]: entry["epsilon_total"] for entry in budgets}
    assert given == {"default": 2.0, "census-2011": 1.5}
    # The analyst chosen stays chosen for the next change.
    expect(page.get_by_label("Analyst", exact=True)).to_have_value("bob")

    for typed in ("-1", "", "a lot"):  # refused by the service, which names the field
        page.get_by_label("ε (epsilon) in all").fill(typed)
        page.get_by_role("button", name="Set the budget").click()
        problem = page.locator("#problem")
        expect(problem).to_contain_text("The budget of bob was not set.")
        expect(problem).to_contain_text("422")
        expect(problem).to_contain_text("epsilon")
    after = idle_service.client.get("/users/bob/budget", headers=steward).json()["budgets"]
    assert after == budgets
    assert not tab.policy_refusals(), tab.console


def test_a_steward_sets_the_budget_of_all_analysts_together(idle_service, portal):
    steward = idle_service.auth("steward")
    client = idle_service.client
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    line = page.locator("#total-budget")
    expect(line).to_have_text(
        "No budget of all analysts together is set: each analyst's alone bounds their releases."
    )
    for typed in ("-1", ""):  # refused by the service, which names the field; nothing set
        page.get_by_label("ε (epsilon) of all").fill(typed)
        page.get_by_role("button", name="Set the store-wide budget").click()
        said = client.put("/budgets/total", json={"epsilon": None}, headers=steward)
        expect(page.locator("#problem")).to_contain_text("The budget of all analysts was not set.")
        expect(page.locator("#problem")).to_contain_text("422")
        expect(page.locator("#problem")).to_contain_text("epsilon")
        assert said.status_code == 422
    assert client.get("/budgets/total", headers=steward).status_code == 404

    page.get_by_label("ε (epsilon) of all").fill("5")
    page.get_by_label("δ (delta) of all").fill("1e-5")
    page.get_by_role("button", name="Set the store-wide budget").click()
    expect(page.locator("#notice")).to_have_text("The budget of all analysts is set: ε 5 left.")
    total = client.get("/budgets/total", headers=steward).json()
    assert total == {
        "epsilon_total": 5.0,
        "delta_total": 1e-5,
        "epsilon_left": 5.0,
        "delta_left": 1e-5,
    }
    expect(line).to_have_text("All analysts together: ε 5 left of 5, δ 0.00001 left of 0.00001.")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(line).to_be_empty()  # nothing of the session stays in the page
    assert not tab.policy_refusals(), tab.console


def test_an_auditor_reads_the_log_newest_first_pages_back_and_checks_the_chain(
    idle_service, portal
):
    service = idle_service.client.app.state.context.service
    for number in range(60):  # more than a page; a detail that is markup stays text
        service.audit.append(
            actor=f"auditor-test{PAYLOAD}", action="test.entry", details={"n": number}
        )
    head = service.audit.head()[0]

    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("auditor")
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(50)
    # Newest first, from the end of the chain (the sign-in's own entries included).
    seqs = [int(seq) for seq in page.locator("#audit tbody tr td:first-child").all_inner_texts()]
    newest = [entry.seq for entry in service.audit.entries(after=0, limit=5000)][-50:]
    assert seqs == newest[::-1] and seqs[0] > head
    ours = page.locator("#audit tbody tr", has_text="test.entry").first
    assert ours.locator("td").nth(2).inner_text() == f"auditor-test{PAYLOAD}"
    assert ours.locator("td").nth(5).inner_text() == "n: 59"

    older = page.get_by_role("button", name="Show older entries")
    older.press("Enter")
    expect(rows).to_have_count(min(100, seqs[0]))
    while older.is_visible():
        older.click()
        expect(page.locator("#notice")).to_contain_text("older entries of the audit log shown")
    expect(rows).to_have_count(seqs[0])  # the whole chain, each entry once
    assert page.locator("#audit tbody tr td:first-child").last.inner_text() == "1"
    expect(page.locator("#audit-heading")).to_be_focused()

    page.get_by_role("button", name="Check the chain").click()
    verdict = page.locator("#audit-verdict")
    expect(page.locator("#notice")).to_have_text("The audit chain checks.")
    expect(verdict).to_contain_text(f"The chain checks: {seqs[0]} entries, the last #{seqs[0]}")
    with service.state.write() as conn:  # an entry edited behind the service's back
        conn.execute(audit.update().where(audit.c.seq == 7).values(details={"n": -1}))
    page.get_by_role("button", name="Check the chain").click()
    expect(verdict).to_have_text(
        "The chain is broken at entry #7: " + service.audit.verify().reason
    )
    expect(page.locator("#notice")).to_have_text(verdict.inner_text())
    assert page.evaluate("() => window.injected") is None
    assert not tab.policy_refusals(), tab.console


def test_a_stewards_change_shows_in_the_audit_log_at_once(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    newest = page.locator("#audit tbody tr").first.locator("td")
    expect(newest.nth(3)).to_have_text("token.issued")  # the sign-in's

    page.get_by_label("User", exact=True).select_option("bob")
    page.get_by_label("Scopes", exact=True).fill("trips_od:*:*")
    page.get_by_role("button", name="Set the scopes").click()
    expect(newest.nth(3)).to_have_text("user.scopes")
    expect(newest.nth(4)).to_have_text("user:bob")
    expect(newest.nth(5)).to_have_text("scopes: trips_od:*:*")

    page.get_by_label("Analyst", exact=True).select_option("bob")
    page.get_by_label("ε (epsilon) in all").fill("1.5")
    page.get_by_role("button", name="Set the budget").click()
    expect(newest.nth(3)).to_have_text("budget.set")
    page.get_by_label("ε (epsilon) of all").fill("5")
    page.get_by_role("button", name="Set the store-wide budget").click()
    expect(newest.nth(3)).to_have_text("budget.total_set")
    seqs = [int(seq) for seq in page.locator("#audit tbody tr td:first-child").all_inner_texts()]
    head = idle_service.client.app.state.context.service.audit.head()[0]
    assert seqs == list(range(head, 0, -1))  # every entry once, newest first
    assert not tab.policy_refusals(), tab.console


def test_the_audit_log_fits_the_page_its_times_on_one_line(idle_service, portal):
    """A job's entry holds its parameters, a token's its long name: the table breaks them
    rather than run past the page's edge, and on a phone each entry's cells stack."""
    submit(idle_service, idle_service.auth("alice"))
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("auditor")
    entry = page.locator("#audit tbody tr", has_text="job.submitted")
    expect(entry).to_have_count(1)
    overflow = "(e) => [e.parentElement.scrollWidth, e.parentElement.clientWidth]"
    lines = (
        "(e) => { const r = document.createRange(); r.selectNodeContents(e);"
        " return r.getClientRects().length; }"
    )
    wide, room = page.locator("#audit").evaluate(overflow)
    assert wide <= room, (wide, room)
    assert entry.locator("td.time").evaluate(lines) == 1

    page.set_viewport_size({"width": 390, "height": 900})
    wide, room = page.locator("#audit").evaluate(overflow)
    assert wide <= room, (wide, room)
    assert entry.locator("td").nth(3).get_attribute("data-label") == "Action"


def test_a_steward_sees_the_audit_log_below_the_budgets(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    rows = page.locator("#audit tbody tr")
    expect(rows.first).to_contain_text("steward")  # the sign-in, newest
    expect(page.locator("#steward")).to_be_visible()
    head = idle_service.client.app.state.context.service.audit.head()[0]
    assert head < 50
    expect(rows).to_have_count(head)  # fewer than a page: every entry, and no more to ask
    expect(page.get_by_role("button", name="Show older entries")).to_be_hidden()


def test_a_steward_approves_one_held_release_and_rejects_another(service, portal):
    alice, steward = service.auth("alice"), service.auth("steward")
    policy = {"disclosure": {"min_count": 15, "rounding_base": 5}, "require_approval": True}
    assert service.client.put("/policies/*", json=policy, headers=steward).is_success
    held = [
        service.wait(submit(service, alice, {**JOB, "parameters": {"min_nights": n}})["id"], alice)
        for n in (2, 3)
    ]
    assert {job["status"] for job in held} == {"awaiting_approval"}
    kept, dropped = (job["id"] for job in held)

    tab = portal(service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    expect(page.locator("#account")).to_contain_text("Signed in as steward (steward)")
    expect(page.locator("#analyst")).to_be_hidden()
    first = page.locator(f"#approvals article[data-job='{kept}']")
    expect(first.locator("h3")).to_have_text(f"Job {kept}")
    expect(first).to_contain_text("alice ran usual_residence")
    expect(first.locator("tbody tr")).to_have_count(3)  # the checked release, row by row
    expect(first.locator("table caption")).to_have_text("The release as checked: 3 rows")

    # Without a reason the service refuses the decision: its words, as they are.
    first.get_by_role("button", name="Approve the release").click()
    said = page.get_by_role("alert").locator(".said")
    expect(said).to_contain_text("reason")
    expect(first.get_by_label("Reason for the decision")).to_be_focused()
    assert first.get_by_label("Reason for the decision").get_attribute("required") is not None
    assert service.client.get(f"/jobs/{kept}", headers=alice).json()["status"] == (
        "awaiting_approval"
    )

    first.get_by_label("Reason for the decision").fill("counts checked")
    approving: list[str] = []
    page.on("request", lambda request: approving.append(urlsplit(request.url).path))
    first.get_by_role("button", name="Approve the release").dblclick()  # one decision sent
    expect(page.locator("#notice")).to_have_text(f"Job {kept}: released.")
    expect(first).to_have_count(0)
    assert approving.count(f"/approvals/{kept}") == 1, approving
    expect(page.get_by_role("alert")).to_be_empty()
    second = page.locator(f"#approvals article[data-job='{dropped}']")
    second.get_by_label("Reason for the decision").fill("too fine a rule")
    second.get_by_role("button", name="Reject it").click()
    expect(page.locator("#notice")).to_contain_text(f"Job {dropped}: rejected")
    expect(page.locator("#no-approvals")).to_be_visible()

    decided = [service.client.get(f"/jobs/{job}", headers=alice).json() for job in (kept, dropped)]
    assert [job["status"] for job in decided] == ["released", "rejected"]
    assert not tab.policy_refusals(), tab.console


def test_a_held_release_shows_its_columns_in_order_and_a_withheld_count_as_withheld(
    service, portal
):
    alice, steward = service.auth("alice"), service.auth("steward")
    held_back = {"require_approval": True}
    assert service.client.put("/policies/*", json=held_back, headers=steward).is_success
    job = service.wait(submit(service, alice)["id"], alice)
    assert job["status"] == "awaiting_approval"
    held = service.client.get("/approvals", headers=steward).json()["approvals"][0]["release"]
    columns = [column["name"] for column in held["columns"]]
    assert list(held["table"][0]) != columns  # the JSON's rows name their fields in another order

    def tamper(path: str, body: Any) -> Any:
        if path == "/approvals":  # as a count under the threshold comes: null
            body["approvals"][0]["release"]["table"][0]["device_count"] = None
        return body

    tab = portal(service, tamper)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    table = page.locator(f"#approvals article[data-job='{job['id']}'] table")
    expect(table.locator("thead th")).to_have_text(columns)
    first = table.locator("tbody tr").first.locator("td")
    expect(first.nth(columns.index("device_count"))).to_have_text("withheld")
    expect(first.nth(columns.index("area_code"))).to_have_text(held["table"][0]["area_code"])
    rows = len(held["table"])
    caption = f"The release as checked: {rows} rows, 1 withheld by the disclosure rules"
    expect(table.locator("caption")).to_have_text(caption)


def test_a_parameters_format_shows_before_submission_and_the_service_still_judges(
    idle_service, portal
):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    page.get_by_label("Algorithm").select_option("usual_residence")
    tacs = page.get_by_label("filters, m2m tacs", exact=True)
    hint = page.locator(f"#{tacs.get_attribute('aria-describedby')}")
    expect(hint).to_contain_text("8 digits written as a string")  # the schema's description
    expect(hint).to_contain_text("Allowed: a comma-separated list of texts of 8 digits")
    catalogue = page.locator("#catalogue article").filter(has_text="usual_residence").first
    expect(catalogue.locator("tr").filter(has_text="m2m tacs")).to_contain_text("texts of 8 digits")

    mismatch = "(e) => e.validity.patternMismatch"
    for typed, wrong in (("01234567, 35123456", False), ("0123456", True), ("1234567a", True)):
        tacs.fill(typed)
        assert tacs.evaluate(mismatch) is wrong, typed

    # The page only marks it: the service judges, and its words are shown.
    tab.submit()
    said = page.get_by_role("alert").locator(".said")
    expect(said).to_contain_text("filters.m2m_tacs")
    assert idle_service.client.get("/jobs", headers=idle_service.auth("alice")).json()["jobs"] == []


def test_a_job_offers_only_the_formats_the_service_serves_its_release_in(service, portal):
    steward = service.auth("steward")
    granted = service.client.put("/users/alice/scopes", json={"scopes": ["*:*:*"]}, headers=steward)
    assert granted.status_code == 200, granted.text
    alice = service.auth("alice")
    jobs = {
        algorithm: service.wait(submit(service, alice, {"algorithm": algorithm})["id"], alice)
        for algorithm in ("usual_residence", "device_filter")
    }
    assert {job["status"] for job in jobs.values()} == {"released"}

    tab = portal(service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    buttons = {
        algorithm: tab.row(job["id"]).locator(".downloads button")
        for algorithm, job in jobs.items()
    }
    expect(buttons["usual_residence"]).to_have_text(["View", "CSV", "JSON", "GeoJSON", "Parquet"])
    expect(buttons["device_filter"]).to_have_text(["View", "CSV", "JSON", "Parquet"])  # no areas

    areas = jobs["usual_residence"]["id"]
    with page.expect_download() as started:
        page.get_by_role("button", name=f"Download the result of job {areas} as GeoJSON").click()
    collection = json.loads(Path(started.value.path()).read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 3
    assert not tab.policy_refusals(), tab.console


def test_every_role_is_shown_as_the_service_knows_it_not_as_typed(idle_service, portal):
    def tamper(path: str, body: Any) -> Any:
        if path == "/me":  # what the service says is shown, as text
            body["username"] = f"{body['username']} (known){PAYLOAD}"
        return body

    for name, role, view in (
        ("alice", "analyst", "#analyst"),
        ("steward", "steward", "#steward"),
        ("auditor", "auditor", "#audit-log"),
    ):
        tab = portal(idle_service, tamper)
        page, expect = tab.page, sync_api.expect
        tab.sign_in(name)
        expect(page.locator("#account")).to_contain_text(
            f"Signed in as {name} (known){PAYLOAD} ({role})"
        )
        expect(page.locator(view)).to_be_visible()
        expect(page.locator("#notice")).to_have_text(f"Signed in as {name} (known){PAYLOAD}.")
        page.reload()  # a kept session asks again
        expect(page.locator("#account-name")).to_have_text(f"{name} (known){PAYLOAD}")
        assert page.evaluate("() => window.injected") is None
        assert not tab.policy_refusals(), tab.console


def test_a_user_whose_password_a_steward_set_chooses_their_own_then_carries_on(
    idle_service, portal
):
    given, own = "a passphrase the steward knows", "alice's very own passphrase"
    steward = idle_service.auth("steward")
    reset = idle_service.client.put(
        "/users/alice/password", json={"password": given}, headers=steward
    )
    assert reset.status_code == 204, reset.text

    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    alert = page.get_by_role("alert")
    tab.sign_in("alice", given)
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    expect(page.locator("#account")).to_contain_text("Signed in as alice (analyst)")
    expect(page.locator("#analyst")).to_be_hidden()
    expect(page.locator("#notice")).to_contain_text("A data steward set your password")
    expect(page.get_by_label("Password the steward gave you")).to_be_focused()
    page.reload()  # the session remembers what comes first
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()

    def change(current: str, new: str, again: str) -> None:
        page.get_by_label("Password the steward gave you").fill(current)
        page.get_by_label("New password", exact=True).fill(new)
        page.get_by_label("New password again").fill(again)
        page.get_by_role("button", name="Change the password").click()

    change(given, own, own + "x")  # a slip: nothing sent
    expect(alert).to_contain_text("differ")
    expect(alert).not_to_contain_text("The service said")
    change(given, "short", "short")  # the service's rule, in its words
    expect(alert).to_contain_text("422")
    expect(alert.locator(".said")).to_contain_text("new_password")
    change("not the password", own, own)
    expect(alert).to_contain_text("403")
    expect(alert.locator(".said")).to_contain_text("current password is wrong")
    user = idle_service.client.get("/users/alice", headers=steward).json()
    assert user["must_change_password"]

    change(given, own, own)
    expect(page.locator("#analyst")).to_be_visible()
    expect(page.locator("#budget tbody tr")).to_have_count(1)
    expect(page.locator("#notice")).to_have_text("Your password is changed. Signed in as alice.")
    expect(page.locator("#change-password")).to_be_hidden()
    assert page.get_by_label("New password", exact=True).input_value() == ""
    user = idle_service.client.get("/users/alice", headers=steward).json()
    assert not user["must_change_password"]
    token = idle_service.client.post(
        "/auth/token", json={"username": "alice", "password": own}
    ).json()
    assert token["must_change_password"] is False
    page.reload()
    expect(page.locator("#analyst")).to_be_visible()
    assert not tab.policy_refusals(), tab.console


@pytest.mark.parametrize(
    ("scopes", "algorithm", "level"),
    [
        (None, "usual_residence", "municipality"),  # alice's own scope
        (["home_work_flows:province:*", "trips_od:municipality:*"], "home_work_flows", "province"),
        (["nothing_known:*:*", "trips_od:*:*"], "trips_od", "municipality"),
        (["*:*:*"], "device_filter", "municipality"),  # anything: the catalogue's first
    ],
)
def test_the_job_form_starts_at_an_algorithm_the_analysts_scopes_allow(
    idle_service, portal, scopes, algorithm, level
):
    if scopes is not None:
        context = idle_service.client.app.state.context
        context.users.set_scopes("alice", scopes, actor="test")  # unknown names kept as given
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    expect(page.get_by_label("Algorithm")).to_have_value(algorithm)
    expect(page.get_by_label("Area level")).to_have_value(level)
    summary = next(
        entry["summary"]
        for entry in idle_service.client.get("/algorithms").json()["algorithms"]
        if entry["name"] == algorithm
    )
    expect(page.locator("#algorithm-summary")).to_have_text(summary)  # its form, built


def test_an_analyst_with_many_jobs_shows_the_older_ones_on_request(idle_service, portal, tmp_path):
    alice = idle_service.auth("alice")
    submitted = []
    for k in range(30):  # more than the portal's page of 25
        body = {"algorithm": "usual_residence", "parameters": {"min_nights": 1 + k % 7}}
        body["parameters"]["night_start_hour"] = 16 + k // 7
        submitted.append(submit(idle_service, alice, body)["id"])
    newest_first = submitted[::-1]
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    rows = page.locator("#jobs tbody tr")
    older = page.get_by_role("button", name="Show older jobs")
    expect(rows).to_have_count(25)
    expect(older).to_be_visible()
    assert [row.get_attribute("data-job") for row in rows.all()] == newest_first[:25]

    older.focus()  # scrolled into view, below the newest 25 jobs
    page.screenshot(path=str(tmp_path / "newest-jobs.png"))
    page.keyboard.press("Enter")
    expect(rows).to_have_count(30)
    expect(older).to_be_hidden()  # no older job left to show
    expect(page.locator("#notice")).to_have_text(
        "5 older jobs shown, 30 in all. These are all your jobs."
    )
    expect(page.get_by_role("heading", name="Your jobs")).to_be_focused()
    assert [row.get_attribute("data-job") for row in rows.all()] == newest_first
    tab.row(submitted[0]).scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "older-jobs.png"))
    for shot in ("newest-jobs.png", "older-jobs.png"):
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A job submitted now tops the list, and the older ones stay shown below it.
    page.get_by_label("Algorithm").select_option("usual_residence")
    tab.submit(**{"min nights": "2", "night start hour": "23"})
    expect(rows).to_have_count(31)
    newest = tab.newest_job()
    assert newest not in submitted
    assert [row.get_attribute("data-job") for row in rows.all()] == [newest, *newest_first]
    expect(older).to_be_hidden()
    # Refreshing shows the newest page alone again, the older ones a click away.
    page.get_by_role("button", name="Refresh the list").click()
    expect(rows).to_have_count(25)
    expect(older).to_be_visible()
    assert not tab.policy_refusals(), tab.console


def test_the_form_starts_at_a_project_with_budget_and_no_budget_is_said(service, portal):
    context = service.client.app.state.context
    for name in ("carol", "dave"):
        context.users.add(username=name, role=Role.ANALYST, password=PASSWORD, actor="test")
    context.service.set_budget(
        analyst="carol", project="census-2011", epsilon=1.0, delta=0.0, steward="test"
    )
    expect = sync_api.expect

    carol = portal(service)
    carol.sign_in("carol")
    budget = carol.page.locator("#budget tbody tr")
    expect(budget).to_have_count(1)
    expect(budget.locator("td")).to_have_text(["census-2011", "1", "0"])
    expect(carol.page.get_by_label("Project (budget account)")).to_have_value("census-2011")

    dave = portal(service)
    dave.sign_in("dave")
    expect(dave.page.locator("#budget tbody")).to_have_text(
        "No budget in any project yet: ask the data steward for one."
    )


def test_a_job_that_ends_on_an_older_page_is_shown_ended(idle_service, portal):
    alice = idle_service.auth("alice")
    submitted = []
    for k in range(26):  # one more than the portal's page of 25: the first is on the next
        body = {"algorithm": "usual_residence", "parameters": {"min_nights": 1 + k % 7}}
        body["parameters"]["night_start_hour"] = 16 + k // 7
        submitted.append(submit(idle_service, alice, body)["id"])
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    page.get_by_role("button", name="Show older jobs").click()
    oldest = tab.row(submitted[0])
    expect(oldest.locator("td.status")).to_contain_text("queued")

    book = idle_service.client.app.state.context.service.book
    assert book.fail(submitted[0], error="stopped for the test", actor="test")
    # Watched like the newest page's jobs: its row and the notice say it ended.
    expect(oldest.locator("td.status")).to_contain_text("stopped for the test")
    expect(page.locator("#notice")).to_contain_text(f"Job {submitted[0]}: failed")
    assert not tab.policy_refusals(), tab.console


def test_the_poll_draws_again_only_the_rows_of_jobs_that_changed(idle_service, portal):
    """Queued jobs are asked about each second; a row whose job did not change stays the
    same element, so the poll takes no keyboard focus (or screen reader's place) from it."""
    alice = idle_service.auth("alice")
    kept, ended = (  # two requests: a job asking what another asks would share its end
        submit(
            idle_service, alice, {"algorithm": "usual_residence", "parameters": {"min_nights": k}}
        )["id"]
        for k in (1, 2)
    )
    polls: list[str] = []

    def count(path: str, body: Any) -> Any:
        if path == "/jobs":
            polls.append(path)
        return body

    tab = portal(idle_service, count)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("alice")
    expect(tab.row(ended)).to_be_visible()
    page.evaluate(
        "([kept, ended]) => { window.rows = [kept, ended].map("
        "(id) => document.querySelector(`#jobs tr[data-job='${id}']`)); }",
        [kept, ended],
    )
    asked = len(polls)
    for _ in range(300):  # two polls at least (one a second), at most 30 s on a busy machine
        if len(polls) >= asked + 2:
            break
        page.wait_for_timeout(100)
    assert len(polls) >= asked + 2, polls
    assert page.evaluate("() => window.rows.map((row) => document.contains(row))") == [True, True]

    book = idle_service.client.app.state.context.service.book
    assert book.fail(ended, error="stopped for the test", actor="test")
    expect(tab.row(ended).locator("td.status")).to_contain_text("stopped for the test")
    # The ended job's row is drawn anew, the other one is the same element still.
    assert page.evaluate("() => window.rows.map((row) => document.contains(row))") == [True, False]
    assert page.locator("#jobs tbody tr").count() == 2
    assert not tab.policy_refusals(), tab.console


def test_a_steward_adds_a_user_who_signs_in_and_a_refused_one_is_said_word_for_word(
    idle_service, portal
):
    steward = idle_service.auth("steward")
    client = idle_service.client

    def names() -> list[str]:
        return [user["username"] for user in client.get("/users", headers=steward).json()["users"]]

    before = names()
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    alert, notice = page.get_by_role("alert"), page.locator("#notice")
    tab.sign_in("steward")
    rows = page.locator("#users tbody tr")
    expect(rows).to_have_count(len(before))
    expect(page.locator("#users tr[data-user='steward'] td").first).to_have_text("steward (you)")

    given = "carol's first passphrase"
    page.get_by_label("Name", exact=True).fill("carol")
    page.get_by_label("Role", exact=True).select_option("analyst")
    page.get_by_label("Initial password").fill(given)
    page.get_by_role("button", name="Add the user").click()
    expect(notice).to_have_text("carol is added as analyst.")
    carol = client.get("/users/carol", headers=steward).json()
    assert carol["role"] == "analyst" and carol["active"] and carol["scopes"] == []
    assert carol["must_change_password"]  # the steward knows her password
    row = page.locator("#users tr[data-user='carol'] td")
    expect(row).to_have_text(["carol", "analyst", "yes", "none", "yes"])
    assert names() == sorted([*before, "carol"])
    budget_analysts = page.get_by_label("Analyst", exact=True).locator("option")
    expect(budget_analysts).to_have_text(["alice", "bob", "carol"])
    expect(page.get_by_label("Initial password")).to_have_value("")
    expect(page.get_by_label("Name", exact=True)).to_have_value("")
    expect(page.get_by_label("User", exact=True)).to_have_value("carol")  # next: her scopes

    # Carol signs in with the password given and is asked to choose her own first.
    token = client.post("/auth/token", json={"username": "carol", "password": given}).json()
    assert token["must_change_password"] is True
    theirs = portal(idle_service)
    theirs.sign_in("carol", given)
    expect(theirs.page.locator("#account")).to_contain_text("Signed in as carol (analyst)")
    expect(theirs.page.locator("#change-password")).to_be_visible()
    expect(theirs.page.locator("#analyst")).to_be_hidden()

    # A name taken, then a short password: the service's words, and nothing changes.
    for name, role, password, words in (
        ("alice", "steward", given, "already exists"),
        ("dave", "auditor", "short", "at least 12 characters"),
    ):
        body = {"username": name, "role": role, "password": password}
        refused = client.post("/users", json=body, headers=steward)
        assert refused.status_code in (409, 422) and words in refused.json()["detail"]
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Role", exact=True).select_option(role)
        page.get_by_label("Initial password").fill(password)
        page.get_by_role("button", name="Add the user").click()
        expect(alert).to_contain_text("The user was not added.")
        expect(alert).to_contain_text(f"({refused.status_code} {refused.json()['title']})")
        expect(alert.locator(".said")).to_have_text(refused.json()["detail"])
        expect(page.get_by_role("button", name="Add the user")).to_be_enabled()
    assert names() == sorted([*before, "carol"])
    assert client.get("/users/alice", headers=steward).json()["role"] == "analyst"
    expect(rows).to_have_count(len(before) + 1)
    assert not tab.policy_refusals(), tab.console


def test_a_steward_sets_scopes_as_the_service_keeps_them_and_a_refused_one_changes_nothing(
    idle_service, portal
):
    steward = idle_service.auth("steward")
    client = idle_service.client

    def scopes_of(name: str) -> list[str]:
        return list(client.get(f"/users/{name}", headers=steward).json()["scopes"])

    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    alert, notice = page.get_by_role("alert"), page.locator("#notice")
    tab.sign_in("steward")
    page.get_by_label("User", exact=True).select_option("bob")
    field = page.get_by_label("Scopes", exact=True)
    expect(field).to_have_value("usual_residence:*:*")  # bob's own, ready to edit
    shown = page.locator("#users tr[data-user='bob'] td.scopes")

    # Commas, spaces, or both: one list.
    typed = "trips_od:province:*, home_work_flows:*:2011-03-07..2011-03-13  usual_residence:*:*"
    field.fill(typed)
    page.get_by_role("button", name="Set the scopes").click()
    kept = sorted(typed.replace(",", " ").split())
    expect(notice).to_have_text(f"The scopes of bob are set: {', '.join(kept)}.")
    assert scopes_of("bob") == kept  # read once the page said so, not before
    expect(shown.locator("div div")).to_have_text(kept)
    expect(field).to_have_value(", ".join(kept))
    assert scopes_of("alice") == [SCOPE]  # only the chosen user's

    for unknown, words in (
        ("nothing_known:*:*", "unknown algorithm 'nothing_known'"),
        ("usual_residence:nowhere:*", "unknown area level 'nowhere'"),
    ):
        body = {"scopes": ["trips_od:*:*", unknown]}
        said = client.put("/users/bob/scopes", json=body, headers=steward).json()["detail"]
        assert words in said
        field.fill(f"trips_od:*:* {unknown}")
        page.get_by_role("button", name="Set the scopes").click()
        expect(alert).to_contain_text("The scopes of bob were not set.")
        expect(alert).to_contain_text("422")
        expect(alert.locator(".said")).to_have_text(said)
    assert scopes_of("bob") == kept
    expect(shown.locator("div div")).to_have_text(kept)

    field.fill("  ")  # nothing typed: no scope at all
    page.get_by_role("button", name="Set the scopes").click()
    expect(notice).to_have_text("The scopes of bob are set: none.")
    assert scopes_of("bob") == []
    expect(shown).to_have_text("none")
    assert not tab.policy_refusals(), tab.console


def test_a_refresh_never_overwrites_the_scopes_a_steward_is_editing(idle_service, portal):
    """The users are drawn again on every refresh and after every change: the scopes field
    keeps what the steward is editing (focused, or changed and not saved) until it is saved,
    and after that shows the service's again."""
    steward = idle_service.auth("steward")
    client = idle_service.client

    def scopes_of(name: str) -> list[str]:
        return list(client.get(f"/users/{name}", headers=steward).json()["scopes"])

    def set_behind(scopes: list[str]) -> None:  # as another steward would, elsewhere
        answer = client.put("/users/bob/scopes", json={"scopes": scopes}, headers=steward)
        assert answer.status_code == 200, answer.text

    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    notice = page.locator("#notice")
    tab.sign_in("steward")
    page.get_by_label("User", exact=True).select_option("bob")
    field = page.get_by_label("Scopes", exact=True)
    expect(field).to_have_value("usual_residence:*:*")
    shown = page.locator("#users tr[data-user='bob'] td.scopes div div")

    def refresh_users() -> None:
        # The refresh runs with the focus left where it is, as one the page starts itself.
        page.evaluate("() => document.getElementById('refresh-users').click()")
        expect(notice).to_have_text("The users are up to date.")

    typed = "trips_od:*:*, usual_residence:province:*"
    field.fill(typed)  # focused, and changed
    set_behind(["home_work_flows:*:*"])
    refresh_users()
    expect(shown).to_have_text(["home_work_flows:*:*"])  # the table is the service's
    expect(field).to_be_focused()
    assert field.input_value() == typed

    # Changed and not saved, the focus elsewhere: other refreshes and changes leave it too.
    page.get_by_role("button", name="Refresh the budgets").click()
    expect(notice).to_have_text("The budgets are up to date.")
    assert field.input_value() == typed
    page.get_by_label("Analyst", exact=True).select_option("alice")
    page.get_by_label("ε (epsilon) in all").fill("3")
    page.get_by_role("button", name="Set the budget").click()
    expect(notice).to_contain_text("The budget of alice in project default is set")
    expect(page.locator("#budgets tbody tr").first.locator("td").nth(2)).to_have_text("3")
    page.get_by_role("button", name="Deactivate bob").click()
    expect(notice).to_have_text("bob is deactivated.")
    expect(page.locator("#user-choice-state")).to_have_text("analyst, deactivated.")
    assert field.input_value() == typed

    page.get_by_role("button", name="Set the scopes").click()
    kept = sorted(typed.replace(",", " ").split())
    expect(notice).to_have_text(f"The scopes of bob are set: {', '.join(kept)}.")
    assert scopes_of("bob") == kept
    expect(field).to_have_value(", ".join(kept))  # saved: the service's list, as it keeps it

    # Saved, the field follows the service again.
    set_behind(["usual_residence:*:*"])
    refresh_users()
    expect(field).to_have_value("usual_residence:*:*")

    # Focused but unchanged, it waits until the steward leaves it.
    field.focus()
    set_behind(["trips_od:*:*"])
    refresh_users()
    expect(shown).to_have_text(["trips_od:*:*"])
    assert field.input_value() == "usual_residence:*:*"
    page.keyboard.press("Tab")
    expect(field).to_have_value("trips_od:*:*")
    assert not tab.policy_refusals(), tab.console


def test_a_steward_deactivates_and_reactivates_an_analyst_but_not_the_last_steward(
    idle_service, portal
):
    steward = idle_service.auth("steward")
    client = idle_service.client
    alice = idle_service.auth("alice")
    login = {"username": "alice", "password": PASSWORD}

    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    alert, notice = page.get_by_role("alert"), page.locator("#notice")
    tab.sign_in("steward")
    page.get_by_label("User", exact=True).select_option("alice")
    page.get_by_role("button", name="Deactivate alice").click()
    expect(notice).to_have_text("alice is deactivated.")
    expect(page.locator("#users tr[data-user='alice'] td").nth(2)).to_have_text("no")
    expect(page.locator("#user-choice-state")).to_have_text("analyst, deactivated.")
    expect(page.locator("#budgets tbody tr").first.locator("td").first).to_have_text(
        "alice (deactivated)"
    )
    assert client.get("/users/alice", headers=steward).json()["active"] is False
    assert client.get("/me", headers=alice).status_code == 401  # her token is revoked
    assert client.post("/auth/token", json=login).status_code == 401  # and she cannot sign in

    # The same button, now the other way, keeps the keyboard's place.
    again = page.get_by_role("button", name="Activate alice")
    expect(again).to_be_focused()
    page.keyboard.press("Enter")
    expect(notice).to_have_text("alice is activated.")
    expect(page.locator("#users tr[data-user='alice'] td").nth(2)).to_have_text("yes")
    assert client.get("/users/alice", headers=steward).json()["active"] is True
    assert client.post("/auth/token", json=login).status_code == 200
    assert client.get("/me", headers=alice).status_code == 401  # the old token stays revoked

    # The signed-in steward is the only one: the service refuses, in its words.
    said = client.patch("/users/steward", json={"active": False}, headers=steward).json()
    assert "only active steward" in said["detail"]
    page.get_by_label("User", exact=True).select_option("steward")
    page.get_by_role("button", name="Deactivate steward").click()
    expect(alert).to_contain_text("steward was not deactivated.")
    expect(alert).to_contain_text("409 Conflict")
    expect(alert.locator(".said")).to_have_text(said["detail"])
    assert client.get("/users/steward", headers=steward).json()["active"] is True
    expect(page.locator("#steward")).to_be_visible()
    expect(page.get_by_role("button", name="Deactivate steward")).to_be_visible()
    assert not tab.policy_refusals(), tab.console


def test_what_a_steward_does_while_the_page_loads_is_not_overwritten_by_the_sign_in(
    idle_service, portal
):
    # The release policies answer last (slow), after the steward has already acted.
    tab = portal(idle_service)
    page, expect, notice = tab.page, sync_api.expect, tab.page.locator("#notice")
    tab.holding = lambda path: path.startswith("/policies")
    tab.sign_in("steward")
    page.get_by_label("User", exact=True).select_option("alice")
    page.get_by_role("button", name="Deactivate alice").click()
    expect(notice).to_have_text("alice is deactivated.")
    assert tab.held, "the policies were answered before the steward acted"
    tab.answer_held()
    expect(page.locator("#policies tbody tr").first).to_be_visible()
    expect(notice).to_have_text("alice is deactivated.")

    # Nothing done meanwhile, the sign-in is announced once the page has loaded.
    tab.page.get_by_role("button", name="Sign out").click()
    tab.holding = lambda path: path.startswith("/policies")
    tab.sign_in("steward")
    expect(page.locator("#steward")).to_be_visible()
    expect(notice).not_to_have_text("Signed in as steward.")
    tab.answer_held()
    expect(notice).to_have_text("Signed in as steward.")


def test_an_older_answer_arriving_late_does_not_hide_a_stewards_change(idle_service, portal):
    # The sign-in's audit page is answered before the change but arrives after the reload's.
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    audit = page.locator("#audit")
    change = audit.locator("tbody tr", has_text="user.updated")
    late = iter([True])
    tab.holding = lambda path: path.startswith("/audit?after") and next(late, False)
    tab.sign_in("steward")
    page.get_by_label("User", exact=True).select_option("alice")
    page.get_by_role("button", name="Deactivate alice").click()
    expect(change).to_contain_text("user:alice")
    expect(audit).to_have_attribute("aria-busy", "true")  # the older load is still out
    assert len(tab.held) == 1
    tab.answer_held()
    expect(audit).not_to_have_attribute("aria-busy", "true")
    expect(change).to_contain_text("user:alice")


def test_a_steward_resets_an_analysts_password_but_not_their_own(idle_service, portal):
    steward = idle_service.auth("steward")
    client = idle_service.client
    given = "a passphrase the steward knows"
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    alert, notice = page.get_by_role("alert"), page.locator("#notice")
    tab.sign_in("steward")
    page.get_by_label("User", exact=True).select_option("alice")
    field = page.get_by_label("New password for alice")

    refused = client.put("/users/alice/password", json={"password": "short"}, headers=steward)
    assert refused.status_code == 422
    field.fill("short")
    page.get_by_role("button", name="Reset the password").click()
    expect(alert).to_contain_text("The password of alice was not reset.")
    expect(alert.locator(".said")).to_have_text(refused.json()["detail"])
    assert client.get("/users/alice", headers=steward).json()["must_change_password"] is False

    field.fill(given)
    page.get_by_role("button", name="Reset the password").click()
    expect(notice).to_contain_text("The password of alice is reset")
    expect(field).to_have_value("")
    expect(page.locator("#users tr[data-user='alice'] td").nth(4)).to_have_text("yes")
    assert client.get("/users/alice", headers=steward).json()["must_change_password"] is True
    old = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert old.status_code == 401
    new = client.post("/auth/token", json={"username": "alice", "password": given}).json()
    assert new["must_change_password"] is True

    # Their own password needs the current one (POST /auth/password): not offered here.
    page.get_by_label("User", exact=True).select_option("steward")
    expect(page.get_by_role("button", name="Reset the password")).to_be_hidden()
    expect(page.locator("#own-password")).to_be_visible()
    page.get_by_label("User", exact=True).select_option("bob")
    page.get_by_label("New password for bob").fill("typed, never sent")

    # Signing out leaves nothing of the session in the page, hidden or not: no row of any
    # table, no user to choose, no password typed.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    tables = "#budgets tbody tr, #users tbody tr, #audit tbody tr, #approvals *"
    assert page.locator(tables).count() == 0
    assert page.locator("#budget-analyst option, #user-choice option").count() == 0
    assert page.locator("#reset-password").input_value() == ""
    assert page.locator("#user-scopes").input_value() == ""
    assert "bob" not in str(page.locator("main").text_content())  # no label names them
    assert not tab.policy_refusals(), tab.console


def test_no_form_of_the_portal_draws_chromiums_password_form_hint(idle_service, portal):
    """Chromium asks every form with a password field for a user name field, which a password
    manager files the password under: the password change and the steward's reset carry a
    hidden one, holding whose password it is. Signing out empties them."""
    given = "a passphrase the steward knows"
    steward = idle_service.auth("steward")
    reset = idle_service.client.put(
        "/users/bob/password", json={"password": given}, headers=steward
    )
    assert reset.status_code == 204, reset.text
    expect = sync_api.expect

    def hints(tab: Portal) -> list[str]:
        return [text for text in tab.console if "username field" in text or "[DOM]" in text]

    tab = portal(idle_service)
    page = tab.page
    tab.sign_in("steward")
    page.get_by_label("User", exact=True).select_option("alice")
    name = page.locator("#reset-form input[autocomplete='username']")
    expect(name).to_have_value("alice")
    assert name.is_hidden() and name.get_attribute("readonly") is not None
    page.get_by_label("User", exact=True).select_option("bob")
    expect(name).to_have_value("bob")

    theirs = portal(idle_service)
    theirs.sign_in("bob", given)
    mine = theirs.page.locator("#change-password-form input[autocomplete='username']")
    expect(mine).to_have_value("bob")
    expect(theirs.page.locator("#new-password-hint")).to_contain_text("At least 12 characters")
    theirs.page.get_by_label("Password the steward gave you").fill(given)
    theirs.page.get_by_label("New password", exact=True).fill("typed, never sent")
    theirs.page.get_by_role("button", name="Sign out").click()
    expect(theirs.page.get_by_role("heading", name="Sign in")).to_be_visible()
    fields = "#change-password-form input"
    assert [field.input_value() for field in theirs.page.locator(fields).all()] == [""] * 4

    analyst, auditor = portal(idle_service), portal(idle_service)
    analyst.sign_in("alice")
    auditor.sign_in("auditor")
    expect(analyst.page.locator("#budget tbody tr")).to_have_count(1)
    expect(auditor.page.locator("#audit tbody tr").first).to_be_visible()
    for each in (tab, theirs, analyst, auditor):
        assert hints(each) == [], each.console


def test_markup_typed_as_a_user_name_or_scope_shows_as_text_and_never_runs(idle_service, portal):
    """The service refuses markup in a user name (its pattern) and in a scope (its form), and
    quotes a refused scope: the page shows that quote as text. A user list carrying markup,
    as if a store held it, shows as text too."""
    markup = "<img/src/onerror=window.injected=1>"  # one scope: no space, no comma
    fake = {"username": f"x{PAYLOAD}", "role": "analyst", "active": True, "scopes": [PAYLOAD]}
    fake |= {"created_at": "", "jobs_per_day": None, "requests_per_minute": None}

    def tamper(path: str, body: Any) -> Any:
        if path == "/users":
            body["users"].append(fake | {"must_change_password": False})
        return body

    steward = idle_service.auth("steward")
    client = idle_service.client
    tab = portal(idle_service, tamper)
    page, expect = tab.page, sync_api.expect
    said = page.get_by_role("alert").locator(".said")
    tab.sign_in("steward")

    page.get_by_label("User", exact=True).select_option("bob")
    page.get_by_label("Scopes", exact=True).fill(markup)
    page.get_by_role("button", name="Set the scopes").click()
    expect(said).to_contain_text(f"scope '{markup}' is not ALGORITHM:LEVEL:PERIOD")
    assert client.get("/users/bob", headers=steward).json()["scopes"] == ["usual_residence:*:*"]

    page.get_by_label("Name", exact=True).fill(PAYLOAD)
    page.get_by_label("Initial password").fill(PASSWORD)
    page.get_by_role("button", name="Add the user").click()
    expect(said).to_contain_text("field 'username': String should match pattern")
    users = client.get("/users", headers=steward).json()["users"]
    assert [user["username"] for user in users] == ["alice", "auditor", "bob", "steward"]

    row = page.locator("#users tbody tr").filter(has_text="x<img").locator("td")
    expect(row.first).to_have_text(f"x{PAYLOAD}")
    expect(row.nth(3)).to_have_text(PAYLOAD)
    expect(page.get_by_label("Analyst", exact=True).locator("option").last).to_have_text(
        f"x{PAYLOAD}"
    )
    page.get_by_label("User", exact=True).select_option(f"x{PAYLOAD}")
    expect(page.get_by_label("Scopes", exact=True)).to_have_value(PAYLOAD)
    expect(page.locator("#toggle-active")).to_have_text(f"Deactivate x{PAYLOAD}")

    assert page.evaluate("() => window.injected") is None
    assert page.locator("main img, main svg, main script").count() == 0
    assert not tab.policy_refusals(), tab.console


def shown_number(value: float) -> str:
    """A number as the portal writes it (JavaScript's String of it, never an exponent)."""
    return str(int(value)) if float(value).is_integer() else f"{value:f}".rstrip("0")


def test_a_steward_sees_the_release_policy_in_force_per_algorithm_as_the_api_gives_it(
    idle_service, portal, tmp_path
):
    steward = idle_service.auth("steward")
    client = idle_service.client
    for name, change in (
        ("*", {"disclosure": {"dp": {"epsilon": 0.25}}, "require_approval": True}),
        ("trips_od", {"disclosure": {"min_count": 25, "rounding_base": 10}}),
        ("usual_residence", {"disclosure": {"dp": None}, "allowed_certifications": []}),
    ):
        answer = client.put(f"/policies/{name}", json=change, headers=steward)
        assert answer.status_code == 200, answer.text
    names = ["*", *dict.fromkeys(a["name"] for a in client.get("/algorithms").json()["algorithms"])]

    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    tab.sign_in("steward")
    rows = page.locator("#policies tbody tr")
    expect(rows).to_have_count(len(names))
    assert [row.get_attribute("data-policy") for row in rows.all()] == names
    for name in names:
        policy = client.get(f"/policies/{name}", headers=steward).json()
        rules, dp = policy["disclosure"], policy["disclosure"]["dp"]
        noise = ["none"] * 3 if dp is None else [dp["mechanism"].capitalize()]
        if dp is not None:
            noise += [shown_number(dp["epsilon"]), shown_number(dp["delta"])]
        values = [
            shown_number(rules["min_count"]),
            shown_number(rules["rounding_base"]),
            "yes" if rules["secondary_suppression"] else "no",
            *noise,
            "yes" if policy["require_approval"] else "no",
            ", ".join(policy["allowed_certifications"]) or "none",
        ]
        expect(page.locator(f"#policies tr[data-policy='{name}'] td .value")).to_have_text(values)
    home = page.locator("#policies tr[data-policy='home_work_flows'] td")
    expect(home.nth(6)).to_have_text("0.25 changed")  # the changes of *: its epsilon
    expect(home.nth(5)).to_have_text("Laplace")  # its own mechanism, kept
    expect(home.nth(8)).to_have_text("yes changed")
    trips = page.locator("#policies tr[data-policy='trips_od'] td")
    expect(trips.nth(1)).to_have_text("its own changes")
    expect(trips.locator(".set")).to_have_count(4)  # threshold, rounding, approval, may run
    expect(trips.nth(5)).to_have_text("Gaussian")  # not the epsilon of *: its own replace them
    expect(home.nth(1)).to_have_text("the changes of *")
    residence = page.locator("#policies tr[data-policy='usual_residence'] td")
    expect(residence.nth(5)).to_have_text("none changed")
    expect(residence.nth(9)).to_have_text("none changed")  # nothing of it may run

    # The form shows the chosen policy's stored changes, ready to edit.
    page.get_by_label("Policy of").select_option("trips_od")
    expect(page.get_by_label("Threshold (min count)")).to_have_value("25")
    expect(page.get_by_label("Rounding base")).to_have_value("10")
    expect(page.get_by_label("Noise", exact=True)).to_have_value("")  # its default
    expect(page.locator("#policy-algorithm-state")).to_have_text(
        "Changes of its own: min count: 25, rounding base: 10, approval no, may run certified."
    )
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#policy-form input, #policy-form select')]
        .filter(e => e.labels.length === 0).map(e => e.id)"""
    )
    assert unlabelled == []

    # Changed elsewhere: the Refresh button shows it.
    change = {"disclosure": {"min_count": 30}}
    assert client.put("/policies/trips_od", json=change, headers=steward).is_success
    page.get_by_role("button", name="Refresh the policies").click()
    expect(page.locator("#notice")).to_have_text("The release policies are up to date.")
    expect(trips.nth(2)).to_have_text("30 changed")
    expect(trips.nth(3)).to_have_text("5")  # back to its default: the change replaced it
    threshold = page.get_by_label("Threshold (min count)")
    expect(threshold).to_have_value("30")  # not edited: the form follows the service
    expect(page.get_by_label("Rounding base")).to_have_value("")
    # Edited and not saved, the form stays as typed through a refresh; its state is the service's.
    threshold.fill("35")
    change = {"disclosure": {"min_count": 40}}
    assert client.put("/policies/trips_od", json=change, headers=steward).is_success
    page.get_by_role("button", name="Refresh the policies").click()
    expect(trips.nth(2)).to_have_text("40 changed")
    expect(page.locator("#policy-algorithm-state")).to_contain_text("min count: 40")
    assert threshold.input_value() == "35"
    section = page.locator("section[aria-labelledby='policies-heading']")
    section.screenshot(path=str(tmp_path / "policies-desktop.png"))

    # On a phone's width each policy's cells stack, named, and nothing runs past the edge.
    page.set_viewport_size({"width": 390, "height": 900})
    assert trips.nth(2).get_attribute("data-label") == "Threshold (min count)"
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths
    section.screenshot(path=str(tmp_path / "policies-phone.png"))
    for shot in ("policies-desktop.png", "policies-phone.png"):
        assert (tmp_path / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not tab.policy_refusals(), tab.console


def test_a_steward_changes_a_policy_in_the_form_and_the_service_keeps_it(idle_service, portal):
    steward = idle_service.auth("steward")
    client = idle_service.client
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    notice = page.locator("#notice")
    sent: list[Any] = []
    page.on(
        "request",
        lambda request: request.method == "PUT" and sent.append(request.post_data_json),
    )
    tab.sign_in("steward")
    row = page.locator("#policies tr[data-policy='usual_residence'] td")
    expect(row.nth(1)).to_have_text("the defaults")

    page.get_by_label("Policy of").select_option("usual_residence")
    page.get_by_label("Threshold (min count)").fill("20")
    page.get_by_label("ε (epsilon) per release").fill("0.3")
    page.get_by_label("Hold each release for a steward's approval").check()
    page.get_by_label("contrib").check()
    page.get_by_role("button", name="Set the policy").click()
    expect(notice).to_have_text(
        "The policy of usual_residence is set: counts of 20 or fewer withheld, rounded to 5, "
        "Laplace noise ε 0.3, approval yes, may run certified, contrib."
    )
    # Only what was set: no rounding, no mechanism, no δ.
    assert sent == [
        {
            "disclosure": {"min_count": 20, "dp": {"epsilon": 0.3}},
            "require_approval": True,
            "allowed_certifications": ["certified", "contrib"],
        }
    ]
    in_force = client.get("/policies/usual_residence", headers=steward).json()
    assert in_force["disclosure"]["min_count"] == 20
    assert in_force["disclosure"]["dp"]["epsilon"] == 0.3
    assert in_force["disclosure"]["dp"]["mechanism"] == "laplace"
    assert in_force["require_approval"] is True
    assert in_force["allowed_certifications"] == ["certified", "contrib"]
    stored = client.get("/policies", headers=steward).json()["policies"]
    assert [entry["disclosure"] for entry in stored] == [{"min_count": 20, "dp": {"epsilon": 0.3}}]
    expect(row.nth(1)).to_have_text("its own changes")
    expect(row.nth(2)).to_have_text("20 changed")
    expect(row.nth(6)).to_have_text("0.3 changed")
    expect(row.nth(9)).to_have_text("certified, contrib changed")
    newest = page.locator("#audit tbody tr").first.locator("td")
    expect(newest.nth(3)).to_have_text("policy.set")
    expect(newest.nth(4)).to_have_text("policy:usual_residence")
    expect(page.get_by_label("Threshold (min count)")).to_have_value("20")  # as now stored

    # For every algorithm without its own: no noise, coarser rounding.
    page.get_by_label("Policy of").select_option("*")
    expect(page.get_by_label("Threshold (min count)")).to_have_value("")
    page.get_by_label("Noise", exact=True).select_option("none")
    expect(page.get_by_label("ε (epsilon) per release")).to_be_disabled()
    page.get_by_label("Rounding base").fill("10")
    page.get_by_role("button", name="Set the policy").click()
    expect(notice).to_contain_text("The policy of * is set: counts of 15 or fewer withheld")
    assert sent[-1] == {
        "disclosure": {"rounding_base": 10, "dp": None},
        "require_approval": False,
        "allowed_certifications": ["certified"],
    }
    flows = client.get("/policies/home_work_flows", headers=steward).json()["disclosure"]
    assert flows["dp"] is None and flows["rounding_base"] == 10
    assert client.get("/policies/usual_residence", headers=steward).json() == in_force
    other = page.locator("#policies tr[data-policy='home_work_flows'] td")
    expect(other.nth(1)).to_have_text("the changes of *")
    expect(other.nth(5)).to_have_text("none changed")
    expect(newest.nth(4)).to_have_text("policy:*")
    assert not tab.policy_refusals(), tab.console


def test_a_refused_policy_change_shows_the_services_words_and_changes_nothing(idle_service, portal):
    steward = idle_service.auth("steward")
    client = idle_service.client
    kept = {"disclosure": {"min_count": 20}}
    assert client.put("/policies/usual_residence", json=kept, headers=steward).is_success
    before = client.get("/policies", headers=steward).json()
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    alert = page.get_by_role("alert")
    tab.sign_in("steward")
    row = page.locator("#policies tr[data-policy='usual_residence'] td")
    expect(row.nth(2)).to_have_text("20 changed")
    head = idle_service.client.app.state.context.service.audit.head()[0]

    page.get_by_label("Policy of").select_option("usual_residence")
    base = {"require_approval": False, "allowed_certifications": ["certified"]}
    for fields, noise, body, words in (
        (
            {"Threshold (min count)": "5"},
            "",
            {"disclosure": {"min_count": 5}},
            "min_count must be between 10 and 1000 devices, got 5",
        ),
        (
            {"Threshold (min count)": "20", "Rounding base": "2"},
            "none",
            {"disclosure": {"min_count": 20, "rounding_base": 2, "dp": None}},
            "rounding_base must be between 5 and 100 when no noise is added",
        ),
    ):
        refused = client.put("/policies/usual_residence", json=body | base, headers=steward)
        assert refused.status_code == 422 and words in refused.json()["detail"]
        for name, value in fields.items():
            page.get_by_label(name, exact=True).fill(value)
        page.get_by_label("Noise", exact=True).select_option(noise)
        page.get_by_role("button", name="Set the policy").click()
        expect(alert).to_contain_text("The policy of usual_residence was not set.")
        expect(alert).to_contain_text("422")
        expect(alert.locator(".said")).to_have_text(refused.json()["detail"])
    assert client.get("/policies", headers=steward).json() == before
    assert idle_service.client.app.state.context.service.audit.head()[0] == head
    expect(row.nth(2)).to_have_text("20 changed")
    expect(row.nth(3)).to_have_text("5")
    expect(page.get_by_label("Rounding base")).to_have_value("2")  # as typed, to correct
    assert not tab.policy_refusals(), tab.console


def test_the_release_policies_are_the_stewards_alone_and_go_at_sign_out(idle_service, portal):
    tab = portal(idle_service)
    page, expect = tab.page, sync_api.expect
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    tab.sign_in("steward")
    section = page.get_by_role("heading", name="Release policies")
    expect(section).to_be_visible()
    expect(page.locator("#policies tbody tr").first).to_be_visible()
    page.get_by_label("Policy of").select_option("trips_od")
    page.get_by_label("Threshold (min count)").fill("40")  # typed, never sent
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.locator("#policies tbody tr, #policy-algorithm option").count() == 0
    assert page.get_by_label("Threshold (min count)").input_value() == ""
    assert page.locator("#policy-algorithm-state").inner_text() == ""

    asked.clear()
    tab.sign_in("alice")
    expect(page.locator("#budget tbody tr")).to_have_count(1)
    assert page.locator("#policies").count() == 1  # in the page, and not shown to her
    expect(section).to_be_hidden()
    expect(page.get_by_label("Policy of")).to_be_hidden()
    assert page.locator("#policies tbody tr").count() == 0
    assert not [path for path in asked if path.startswith("/policies")], asked
    assert not tab.policy_refusals(), tab.console
