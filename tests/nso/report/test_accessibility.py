"""The statistical release as the Web Accessibility Directive asks (WCAG 2.1 AA, EN 301 549).

The report of a whole release (residents, present population and commuting, every figure) is
parsed for what a screen reader needs: the page's language and title, one h1 and no heading
level skipped, a main landmark, every table captioned with header cells that say what they
head, every figure with a text alternative that gives its finding.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from tests.nso.report.whole_release import publish_whole_release

from cellcensus.nso.production import EstimationResult


@dataclass
class Table:
    caption: str = ""
    headers: list[tuple[str | None, str]] = field(default_factory=list)
    """Each ``th``: its scope and its text."""


@dataclass
class Image:
    alt: str | None
    caption: str = ""


class Structure(HTMLParser):
    """What assistive technology reads of a page: language, title, headings, tables, images."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.title = ""
        self.headings: list[tuple[int, str]] = []
        self.landmarks: list[str] = []
        self.tables: list[Table] = []
        self.images: list[Image] = []
        self._text: list[str] | None = None
        self._into: str | None = None
        self._scope: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang")
        elif tag in ("main", "header", "footer", "nav"):
            self.landmarks.append(tag)
        elif tag == "table":
            self.tables.append(Table())
        elif tag == "img":
            self.images.append(Image(alt=found.get("alt")))
        if tag in ("title", "h1", "h2", "h3", "h4", "h5", "h6", "caption", "th", "figcaption"):
            self._text, self._into, self._scope = [], tag, found.get("scope")

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != self._into or self._text is None:
            return
        text = " ".join("".join(self._text).split())
        if tag == "title":
            self.title = text
        elif tag.startswith("h") and tag[1:].isdigit():
            self.headings.append((int(tag[1]), text))
        elif tag == "caption":
            self.tables[-1].caption = text
        elif tag == "th":
            self.tables[-1].headers.append((self._scope, text))
        elif tag == "figcaption" and self.images:
            self.images[-1].caption = text
        self._text = self._into = None


def structure(html: str) -> Structure:
    parsed = Structure()
    parsed.feed(html)
    parsed.close()
    return parsed


@pytest.fixture(scope="module")
def release_report(
    tmp_path_factory: pytest.TempPathFactory, realistic_result: EstimationResult
) -> str:
    """The report of a whole release, with present population and commuting: read only."""
    written = publish_whole_release(
        tmp_path_factory.mktemp("release"),
        realistic_result,
        job_id="6e2f4c1d9a0b4c3e8f7d6a5b4c3d2e1f",
    )
    return Path(written.report).read_text(encoding="utf-8")


def test_the_page_has_a_language_a_title_and_one_main_landmark(release_report: str) -> None:
    page = structure(release_report)

    assert page.lang == "en"
    assert page.title == "Population of Belgian municipalities estimated from mobile phone data"
    assert page.landmarks.count("main") == 1
    # Everything but the title block is in the main landmark.
    body = release_report.split("<body>")[1]
    assert body.split("<main>")[0].strip().startswith("<header>")
    assert body.split("</main>")[1].strip() == "</body>\n</html>"


def test_headings_start_at_one_h1_and_skip_no_level(release_report: str) -> None:
    levels = [level for level, _ in structure(release_report).headings]

    assert levels[0] == 1 and levels.count(1) == 1
    for before, after in itertools.pairwise(levels):
        assert after <= before + 1, structure(release_report).headings


def test_every_table_has_a_caption_and_header_cells_with_their_scope(
    release_report: str,
) -> None:
    tables = structure(release_report).tables

    assert len(tables) >= 11
    for table in tables:
        assert len(table.caption) > 15, table
        assert table.headers, table
        for scope, text in table.headers:
            assert scope in ("col", "row"), table
            assert text, table  # no empty header cell


def test_the_rows_of_the_area_tables_are_headed_by_their_municipality(
    release_report: str,
) -> None:
    every = [table for table in structure(release_report).tables if "All " in table.caption]

    assert len(every) == 1
    rows = [text for scope, text in every[0].headers if scope == "row"]
    assert len(rows) > 500  # one row header per municipality
    assert [text for scope, text in every[0].headers if scope == "col"][:4] == [
        "Municipality",
        "Code",
        "Census 2011",
        "Estimate",
    ]


def test_every_figure_has_a_text_alternative_that_gives_its_finding(release_report: str) -> None:
    images = structure(release_report).images

    assert len(images) == 8
    alts = [image.alt or "" for image in images]
    for image, alt in zip(images, alts, strict=True):
        assert alt and alt != image.caption, image
        # What the figure is, then what it shows, in numbers.
        assert len(alt) > 150 and alt.count(". ") >= 1, alt
        assert re.search(r"\d", alt), alt
    scatter = next(alt for alt in alts if alt.startswith("Scatter plot of estimated against c"))
    assert re.search(
        r"correlation of the logarithms 0\.9\d\d, half of the municipalities "
        r"within \d+\.\d% of the census",
        scatter,
    ), scatter
    maps = alts[0]
    assert re.search(
        r"[\d,]+ of the [\d,]+ municipalities with an estimate are in the same "
        r"density class on both maps",
        maps,
    ), maps


def test_every_figure_sits_in_a_section_under_a_heading(release_report: str) -> None:
    # A figure between sections belongs to no heading: a screen reader's list of headings
    # cannot reach it.
    main = release_report.split("<main>")[1].split("</main>")[0]
    outside = re.sub(r"<section[ >].*?</section>", "", main, flags=re.DOTALL)
    assert "<figure" not in outside
    assert outside.strip() == ""


def test_the_error_map_counts_every_municipality_with_an_estimate(release_report: str) -> None:
    alt = next(
        image.alt or ""
        for image in structure(release_report).images
        if (image.alt or "").startswith("Map of Belgium coloured by the relative")
    )
    counts = re.search(
        r"([\d,]+) municipalities are within 10% of the census \(white and pale\), ([\d,]+) are "
        r"10% or more above it \(red\) and ([\d,]+) more than 10% below",
        alt,
    )
    assert counts, alt
    every = next(table for table in structure(release_report).tables if "All " in table.caption)
    rows = len([text for scope, text in every.headers if scope == "row"])
    found = re.search(r"([\d,]+) municipalit(?:y|ies) had too few devices", release_report)
    withheld = int(found[1].replace(",", "")) if found else 0
    assert sum(int(count.replace(",", "")) for count in counts.groups()) == rows - withheld


def open_report(browser: Any, html: str, folder: Path, *, width: int) -> Any:
    page_file = folder / "report.html"
    page_file.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(page_file.as_uri())
    return page


def test_the_report_reflows_to_320_css_pixels_without_scrolling_sideways(
    browser: Any, release_report: str, tmp_path: Path
) -> None:
    # 320 CSS pixels: a 1280-pixel window zoomed to 400 %. Only the tables scroll sideways,
    # each in its own block; the page itself does not (a job id of 32 characters in the
    # method's text once pushed it 33 pixels wider than the window).
    page = open_report(browser, release_report, tmp_path, width=320)
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    page.close()
    assert widths[0] <= widths[1], widths


def test_the_table_of_every_municipality_opens_from_the_keyboard_with_a_visible_focus(
    browser: Any, release_report: str, tmp_path: Path
) -> None:
    page = open_report(browser, release_report, tmp_path, width=1280)
    page.keyboard.press("Tab")
    focused = page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
        return [e.tagName, e.textContent, s.outlineStyle, parseFloat(s.outlineWidth),
                e.matches(':focus-visible')]; }"""
    )
    page.keyboard.press("Enter")
    opened = page.evaluate("() => document.activeElement.parentElement.open")
    page.close()
    tag, text, style, width, visible = focused
    assert tag == "SUMMARY" and text.startswith("Show the table")
    assert visible and style != "none" and width >= 2
    assert opened is True


def test_every_table_fits_the_printed_page(
    browser: Any, release_report: str, tmp_path: Path
) -> None:
    # A4 less the page's margins of 12 mm each side: 186 mm, 703 CSS pixels. In print the
    # tables do not scroll; the table by size of municipality, whose headings did not wrap,
    # was 93 pixels wider and lost its last column.
    page = open_report(browser, release_report, tmp_path, width=703)
    page.emulate_media(media="print")
    wider = page.evaluate(
        """() => [...document.querySelectorAll('table')]
          .filter(t => t.offsetParent !== null)
          .map(t => [t.querySelector('caption').textContent, t.getBoundingClientRect().right])
          .filter(([, right]) => right > document.documentElement.clientWidth)"""
    )
    page.close()
    assert wider == []
