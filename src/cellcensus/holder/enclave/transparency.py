"""The public transparency log: every job, who ran it and at what privacy cost; no results.

Like OpenSAFELY's public job log: anyone may read which analyst ran which algorithm (name,
version, code hash), with which parameters, at which area level, how much privacy budget it
spent, when, and how it ended. The head of the audit chain is published beside it, so that
outsiders can later check the log was not truncated.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterator, Mapping
from typing import Any

from cellcensus.holder.enclave.jobs import Job, JobBook
from cellcensus.notation import scientific

Setting = tuple[tuple[str, ...], Any]
"""One parameter: its path of names in the nested parameters, and its value."""

PAGE_LIMIT = 1000  # jobs on the web page; the JSON log gives up to 10,000

# Column headings in plain words, for a member of the public reading the page.
HEADINGS = (
    "Job",
    "Submitted (UTC)",
    "Analyst",
    "Algorithm",
    "Version",
    "Area level",
    "Parameters",
    "Privacy cost",
    "Outcome",
    "Finished (UTC)",
)

# Class of each column's cells: job ids are set in a small monospace font, parameters wrap.
KINDS = ("code", "time", "text", "text", "text", "text", "params", "text", "text", "time")

OUTCOMES = {
    "queued": "waiting to run",
    "running": "running",
    "awaiting_approval": "awaiting a data steward's approval",
    "released": "released",
    "failed": "failed, nothing released",
    "rejected": "rejected by a data steward, nothing released",
}

STYLE = (
    "body{font-family:sans-serif;margin:2em auto;max-width:80em;padding:0 1em;color:#222;"
    "line-height:1.45}code{overflow-wrap:anywhere}.wide{overflow-x:auto}"
    "table{border-collapse:collapse}caption{text-align:left;color:#555;padding:.3em 0}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;font-size:.9em;text-align:left;"
    "vertical-align:top}th{background:#f3f5f8}td.time{white-space:nowrap}"
    "td.code{font-family:monospace;font-size:.8em;overflow-wrap:anywhere}"
    "td.params{min-width:12em;overflow-wrap:anywhere}summary{color:#555;cursor:pointer}"
    "@media print{body{margin:0;max-width:none}.wide{overflow:visible}"
    "tr{break-inside:avoid}th{background:none}}"
)
_STYLE_DIGEST = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
STYLE_SOURCE = f"'sha256-{_STYLE_DIGEST}'"
"""The page's one style sheet as a Content-Security-Policy source: nothing else may style it."""

INTRO = (
    "<p>Every job run on the mobile network data in this safe environment, newest first: "
    "who asked, which algorithm and version, with which parameters, at which area level, "
    "what privacy it cost, when, and how it ended. Results are never shown here.</p>"
    "<p><strong>Privacy cost</strong> is what a job spent of its project's privacy budget "
    "(differential privacy): &epsilon; (epsilon) measures how much the data of one phone "
    "(a person with two SIMs has two) can change a result &ndash; the smaller, the better "
    "protected; &delta; (delta) is the small "
    "chance that this guarantee does not hold. A job that reuses an earlier identical "
    "result spends nothing. A statistical release names the job it comes from: look its "
    "number up in the first column.</p>"
)


def public_entry(job: Job) -> dict[str, Any]:
    """What the public may know of one job."""
    return {
        "job_id": job.id,
        "analyst": job.analyst,
        "project": job.project,
        "algorithm": job.algorithm,
        "version": job.version,
        "code_hash": job.code_hash,
        "level": job.level,
        "parameters": job.parameters,
        "epsilon": job.epsilon,
        "delta": job.delta,
        "submitted_at": job.created_at,
        "finished_at": job.finished_at,
        "outcome": job.status.value,
        "cached_from": job.cached_from,
    }


def transparency_log(book: JobBook, *, limit: int = 1000) -> list[dict[str, Any]]:
    """The public entries of the latest `limit` jobs, newest first."""
    return [public_entry(job) for job in book.recent(limit=limit)]


Defaults = Mapping[tuple[str, str], dict[str, Any]]
"""The defaults of each algorithm's parameters, by algorithm name and version."""


def render_page(
    entries: list[dict[str, Any]],
    *,
    head: tuple[int, str],
    limit: int = PAGE_LIMIT,
    defaults: Defaults | None = None,
) -> str:
    """The log as a small self-contained HTML page (everything escaped).

    `entries` are the latest `limit` jobs at most: when there are that many, older ones may
    exist and the page says it does not show them. A job's parameters at their `defaults`
    (those of its algorithm's version) are folded away under their count.
    """
    seq, digest = head
    jobs = _jobs(entries, limit=limit, defaults=defaults or {})
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>cellcensus transparency log</title><style>{STYLE}</style></head><body><main>"
        f"<h1>Transparency log</h1>{INTRO}{jobs}"
        f"<h2>Checking the log</h2>{_chain(seq, digest)}</main></body></html>"
    )


def _chain(seq: int, digest: str) -> str:
    explained = (
        "<p>Every event is also written to an audit log in which each entry carries the "
        "fingerprint of the one before, so that no entry can be changed or removed unnoticed. "
    )
    if seq == 0:
        return f"{explained}It is still empty.</p>"
    return (
        f"{explained}Its latest entry is number {seq}, with fingerprint (SHA-256) "
        f"<code>{html.escape(digest)}</code>. Note both down: an auditor can later check "
        "that the audit log still contains this entry.</p>"
    )


def _jobs(entries: list[dict[str, Any]], *, limit: int, defaults: Defaults) -> str:
    if not entries:
        return "<p>No job has been run yet, so nothing has been released.</p>"
    header = "".join(f"<th scope='col'>{name}</th>" for name in HEADINGS)
    rows = "".join(f"<tr>{_row(entry, defaults)}</tr>" for entry in entries)
    caption = f"{len(entries):,} job{'' if len(entries) == 1 else 's'}, newest first"
    if len(entries) >= limit:
        caption = f"The latest {caption}; older jobs are not shown here"
    return (
        f"<div class='wide'><table><caption>{caption}</caption>"
        f"<thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _row(entry: dict[str, Any], defaults: Defaults) -> str:
    known = defaults.get((entry["algorithm"], entry["version"]))
    cells = (
        _lines([entry["job_id"]]),
        _lines([_time(entry["submitted_at"])]),
        _lines([entry["analyst"]]),
        _lines([entry["algorithm"]]),
        _lines([entry["version"]]),
        _lines([entry["level"]]),
        _parameters(entry["parameters"], known),
        _lines([_cost(entry)]),
        _lines([OUTCOMES.get(entry["outcome"], entry["outcome"])]),
        _lines([_time(entry["finished_at"])]),
    )
    return "".join(
        f"<td class='{kind}'>{cell}</td>" for kind, cell in zip(KINDS, cells, strict=True)
    )


def _lines(lines: list[Any]) -> str:
    return "<br>".join(html.escape(str(line)) for line in lines)


def _cost(entry: dict[str, Any]) -> str:
    if entry["cached_from"]:
        return "none (reuses an earlier identical result)"
    if not entry["epsilon"]:
        return "none"
    cost = f"ε = {entry['epsilon']:g}"
    return f"{cost}, δ = {scientific(entry['delta'])}" if entry["delta"] else cost


def _time(stamp: str | None) -> str:
    """ISO time to the minute: `2026-03-07T10:15:42.1+00:00` -> `2026-03-07 10:15`."""
    return stamp[:16].replace("T", " ") if stamp else ""


def _parameters(value: dict[str, Any], defaults: dict[str, Any] | None) -> str:
    """The parameters the job chose, then those at their defaults folded under their count.

    One `name: value` a line: the analyst's choices stand out and nothing is hidden. Without
    the defaults of the job's algorithm version, every parameter is a line.
    """
    settings = list(_settings(value))
    if not settings:
        return _lines(["the algorithm's defaults"])
    if defaults is None:
        return _lines([_line(*setting) for setting in settings])
    usual = dict(_settings(defaults))
    chosen: list[str] = []
    folded: list[str] = []
    for path, setting in settings:
        (folded if _same(path, setting, usual) else chosen).append(_line(path, setting))
    if not folded:
        return _lines(chosen)
    summary = _folded(len(folded), all_of=not chosen)
    return f"{_lines(chosen)}<details><summary>{summary}</summary>{_lines(folded)}</details>"


def _folded(count: int, *, all_of: bool) -> str:
    """What stands for `count` parameters at their defaults until unfolded."""
    plural = count != 1
    if all_of:
        return f"the algorithm's defaults ({count} parameter{'s' if plural else ''})"
    return f"{count} more at {'their defaults' if plural else 'its default'}"


def _settings(value: dict[str, Any], within: tuple[str, ...] = ()) -> Iterator[Setting]:
    """Each parameter as (its path of names, its value), nested groups walked.

    The period comes first, start before end; the others follow by name.
    """
    for name, setting in sorted(value.items(), key=_period_first):
        path = (*within, str(name))
        if isinstance(setting, dict):
            yield from _settings(setting, path)
        else:
            yield path, setting


def _same(path: tuple[str, ...], setting: Any, defaults: dict[tuple[str, ...], Any]) -> bool:
    """Whether `setting` is the default at `path` (`True` is not `1`, `1` is `1.0`)."""
    if path not in defaults:
        return False
    default = defaults[path]
    return setting == default and isinstance(setting, bool) == isinstance(default, bool)


def _line(path: tuple[str, ...], setting: Any) -> str:
    """`name: value`, nested names joined by ", " and written with spaces."""
    label = ", ".join(name.replace("_", " ") for name in path)
    if isinstance(setting, list):
        return f"{label}: {', '.join(map(_plain, setting)) or 'none'}"
    return f"{label}: {_plain(setting)}"


PERIOD = ("start", "end")


def _period_first(item: tuple[Any, Any]) -> tuple[int, str]:
    """Sort key of a parameter: `start`, then `end`, then the others by name."""
    name = str(item[0])
    return (PERIOD.index(name) if name in PERIOD else len(PERIOD), name)


def _plain(value: Any) -> str:
    """A parameter's value as written by hand: yes/no, none, numbers and text as they are."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    return json.dumps(value) if isinstance(value, dict) else str(value)
