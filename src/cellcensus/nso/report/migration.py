"""Report section of internal migration: movers between two periods, and what noise adds."""

from __future__ import annotations

from html import escape
from typing import Any

from cellcensus.nso.migration import Migration
from cellcensus.nso.report.numbers import number, percent


def migration_section(migration: Migration) -> str:
    """The internal migration section: method, national figures, the noise's share, truth."""
    block = migration.metrics()
    (first, _), (_, last) = migration.periods
    rows = [
        ("Persons in both periods' released pairs", number(block["persons_in_released_pairs"])),
        ("Movers (released pairs between two areas)", number(block["movers"])),
        ("Migration rate", percent(block["migration_rate"], 2)),
        ("Pairs between two areas released / withheld", _pairs(block)),
        ("Pairs noise alone would release", number(block["noise_only_pairs_expected"], 1)),
    ]
    if "truth_movers" in block:
        rows += [
            ("True movers (synthetic world)", number(block["truth_movers"])),
            ("True migration rate", percent(block["truth_migration_rate"], 2)),
        ]
    body = "".join(
        f"<tr><th scope='row'>{label}</th><td class='num'>{value}</td></tr>"
        for label, value in rows
    )
    return (
        "<section><h2>Internal migration</h2>\n"
        "<p>The holder found each phone's usual residence in an earlier and a later period "
        f"({first} to {last}) and released the phones per pair of {escape(migration.level)}s "
        "of residence; a phone counts as a mover only where neither home was a night place "
        "in the other period. Each pair is multiplied by the persons per device of its "
        "origin (from the resident estimate); phones seen in only one period are not "
        "counted. The holder withholds a pair whose noisy count is at or below its "
        "threshold, raised over the noise so that about one empty pair of the matrix is "
        "released on noise alone: where the pairs released are about as few as that, the "
        "movers may be noise (migration.csv and migration_pairs.csv give every figure with "
        "an approximate 95% interval).</p>\n"
        "<table><caption>Internal migration between the two periods</caption>"
        f"<tbody>{body}</tbody></table></section>"
    )


def _pairs(block: dict[str, Any]) -> str:
    released, withheld = block["n_mover_pairs"], block["n_mover_pairs_suppressed"]
    return f"{released:,} / {withheld:,}"
