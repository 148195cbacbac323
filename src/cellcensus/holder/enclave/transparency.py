"""The public transparency log: every job, who ran it and at what privacy cost; no results.

Like OpenSAFELY's public job log: anyone may read which analyst ran which algorithm (name,
version, code hash), with which parameters, at which area level, how much privacy budget it
spent, when, and how it ended. The head of the audit chain is published beside it, so that
outsiders can later check the log was not truncated.
"""

from __future__ import annotations

import html
import json
from typing import Any

from cellcensus.holder.enclave.jobs import Job, JobBook

COLUMNS = (
    "submitted_at",
    "analyst",
    "algorithm",
    "version",
    "level",
    "parameters",
    "epsilon",
    "outcome",
    "finished_at",
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


def render_page(entries: list[dict[str, Any]], *, head: tuple[int, str]) -> str:
    """The log as a small self-contained HTML page (everything escaped)."""
    header = "".join(f"<th>{html.escape(name)}</th>" for name in COLUMNS)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_cell(entry[name]))}</td>" for name in COLUMNS)
        + "</tr>"
        for entry in entries
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>cellcensus transparency log</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;font-size:.9em}</style></head><body>"
        "<h1>Transparency log</h1><p>Every job run in this safe environment: who, which "
        "algorithm and version, parameters, privacy budget spent, when, outcome. Results are "
        f"never shown here. Audit chain head: entry {head[0]}, hash "
        f"<code>{html.escape(head[1])}</code>.</p>"
        f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table></body></html>"
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
