"""The public transparency page, as a member of the public would read it."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser

from cellcensus.holder.enclave.jobs import Job, JobStatus
from cellcensus.holder.enclave.transparency import Defaults, public_entry, render_page

JOB = Job(
    id="job-7f3a9c",
    analyst="alice",
    project="census-2011",
    algorithm="usual_residence",
    version="1.2.0",
    code_hash="c0de" * 16,
    level="municipality",
    parameters={"min_nights": 2},
    policy={},
    request_hash="feed" * 16,
    status=JobStatus.RELEASED,
    stage="done",
    attempts=1,
    epsilon=0.5,
    delta=1e-6,
    release_id="release-1b2c",
    cached_from=None,
    error=None,
    decided_by=None,
    decision_reason=None,
    created_at="2026-03-07T10:15:42.123456+00:00",
    started_at="2026-03-07T10:15:43+00:00",
    finished_at="2026-03-07T10:16:05.5+00:00",
)
HEAD = (42, "9f" * 32)
VOID = {"meta", "br", "img"}


class Page(HTMLParser):
    """Checks nesting and collects what the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []
        self.attributes: list[tuple[str, dict[str, str | None]]] = []
        self.headers: list[str] = []
        self.cells: list[str] = []
        self.summaries: list[str] = []
        self.folded: list[str] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.open and self.open[-1] == "th":
            self.headers.append(data)
        elif self.open and self.open[-1] == "td":
            self.cells.append(data)
        elif self.open and self.open[-1] == "summary":
            self.summaries.append(data)
        elif self.open and self.open[-1] == "details":
            self.folded.append(data)

    def has(self, tag: str, **wanted: str) -> bool:
        return any(
            name == tag and all(attrs.get(key) == value for key, value in wanted.items())
            for name, attrs in self.attributes
        )


def page_of(
    jobs: list[Job],
    head: tuple[int, str] = HEAD,
    limit: int = 1000,
    defaults: Defaults | None = None,
) -> Page:
    entries = [public_entry(job) for job in jobs]
    page = Page(render_page(entries, head=head, limit=limit, defaults=defaults))
    assert not page.errors and not page.open
    return page


def test_page_fits_a_phone_and_its_table_scrolls_on_its_own():
    page = page_of([JOB])
    assert page.has("html", lang="en")
    assert page.has("meta", name="viewport", content="width=device-width, initial-scale=1")
    assert page.has("div", **{"class": "wide"})
    assert ".wide{overflow-x:auto}" in "".join(page.text)


def test_columns_and_values_are_in_plain_words():
    held = dataclasses.replace(JOB, status=JobStatus.AWAITING_APPROVAL, finished_at=None)
    page = page_of([JOB, held])
    assert all("_" not in header for header in page.headers)
    assert "Privacy cost" in page.headers
    assert "ε = 0.5, δ = 10⁻⁶" in page.cells  # as in the report (cellcensus.notation)
    assert "2026-03-07 10:15" in page.cells
    assert "awaiting a data steward's approval" in page.cells
    assert not any("awaiting_approval" in cell for cell in page.cells)


def test_a_reused_result_says_why_it_cost_nothing():
    reused = dataclasses.replace(JOB, epsilon=0.0, delta=0.0, cached_from="job-1a2b3c")
    page = page_of([reused])
    assert "none (reuses an earlier identical result)" in page.cells
    assert "job-1a2b3c" not in "".join(page.text)


def test_the_job_a_release_cites_can_be_found_but_no_internal_identifier():
    page = page_of([JOB])
    assert JOB.id in page.cells
    text = "".join(page.text)
    for internal in (JOB.code_hash, JOB.request_hash, JOB.release_id, JOB.project):
        assert internal not in text


def test_parameters_are_escaped():
    hostile = dataclasses.replace(JOB, parameters={"label": "<script>alert(1)</script>"})
    page = page_of([hostile])
    assert not page.has("script")
    assert any("<script>" in cell for cell in page.cells)


def test_an_empty_log_says_so_instead_of_an_empty_table():
    page = page_of([], head=(0, "0" * 64))
    text = " ".join(page.text)
    assert not page.has("table")
    assert "No job has been run yet" in text
    assert "0" * 64 not in text and "still empty" in text


def test_a_full_page_says_that_older_jobs_are_not_shown():
    jobs = [dataclasses.replace(JOB, id=f"job-{number}") for number in range(3)]
    assert "3 jobs, newest first" in " ".join(page_of(jobs, limit=4).text)
    assert "1 job, newest first" in " ".join(page_of(jobs[:1]).text)
    full = " ".join(page_of(jobs, limit=3).text)
    assert "The latest 3 jobs, newest first; older jobs are not shown here" in full


def test_the_period_reads_first_start_before_end():
    asked = {"min_nights": 2, "end": "2011-03-13", "filters": {"min_days": 1}, "start": None}
    page = page_of([dataclasses.replace(JOB, parameters=asked)])
    text = " ".join(page.text)
    order = ["start: none", "end: 2011-03-13", "filters, min days: 1", "min nights: 2"]
    assert [text.index(line) for line in order] == sorted(text.index(line) for line in order)


def test_parameters_read_one_per_line_in_words():
    asked = {
        "slot_minutes": 15,
        "filters": {"min_days": 3, "exclude_m2m": True},
        "areas": ["21004", "21001"],
        "countries": [],
    }
    page = page_of([dataclasses.replace(JOB, parameters=asked)])
    assert {
        "areas: 21004, 21001",
        "countries: none",
        "filters, exclude m2m: yes",
        "filters, min days: 3",
    } <= set(page.cells)
    assert "slot minutes: 15" in page.cells
    text = "".join(page.cells)
    assert "{" not in text and "slot_minutes" not in text and "min_days" not in text
    assert "the algorithm's defaults" in page_of([dataclasses.replace(JOB, parameters={})]).cells


DEFAULTS = {
    (JOB.algorithm, JOB.version): {
        "start": None,
        "min_nights": 2,
        "rule": "most_distinct_nights",
        "filters": {"min_days": 1, "exclude_m2m": True},
    }
}


def test_the_chosen_parameters_stand_out_and_the_defaults_fold_under_their_count():
    asked = {
        "start": None,
        "min_nights": 3,
        "rule": "most_distinct_nights",
        "filters": {"min_days": 1, "exclude_m2m": False},
    }
    page = page_of([dataclasses.replace(JOB, parameters=asked)], defaults=DEFAULTS)
    assert {"filters, exclude m2m: no", "min nights: 3"} <= set(page.cells)
    assert page.summaries == ["3 more at their defaults"]
    assert page.folded == ["start: none", "filters, min days: 1", "rule: most_distinct_nights"]


def test_a_job_at_every_default_says_so_and_still_lists_them():
    untouched = {"min_nights": 2, "filters": {"min_days": 1}}
    page = page_of([dataclasses.replace(JOB, parameters=untouched)], defaults=DEFAULTS)
    assert page.summaries == ["the algorithm's defaults (2 parameters)"]
    assert page.folded == ["filters, min days: 1", "min nights: 2"]
    assert not [cell for cell in page.cells if cell.startswith(("min nights", "filters"))]


def test_a_default_compares_by_value_and_kind():
    asked = {"min_nights": 2.0, "filters": {"min_days": True}}
    page = page_of([dataclasses.replace(JOB, parameters=asked)], defaults=DEFAULTS)
    assert "filters, min days: yes" in page.cells  # True is not the default 1
    assert page.folded == ["min nights: 2.0"]


def test_without_the_defaults_of_the_jobs_version_every_parameter_shows():
    older = dataclasses.replace(JOB, version="1.1.0", parameters={"min_nights": 2})
    page = page_of([older], defaults=DEFAULTS)
    assert "min nights: 2" in page.cells
    assert not page.has("details")
