"""A synthetic world's truth beside a release: which folder may stand there."""

from __future__ import annotations

from pathlib import Path

from cellcensus.errors import CellcensusError
from cellcensus.release import Release


def check_truth(
    world: Path, *, release: Release, truth: Path, what: str, source: str = "--world"
) -> None:
    """Refuse a world folder whose `truth` (a path in it) cannot stand beside `release`.

    Args:
        world: The folder given (`cellcensus synth --out`).
        release: The release the truth is to stand beside.
        truth: Where in `world` the truth is (e.g. ``truth/presence``).
        what: The release and its truth, in words: ``("present population", "presence")``
            reads "the present population release" and "a true presence".
        source: The option that named `world`.

    Raises:
        CellcensusError: The release does not publish that its data are synthetic (real
            data have no truth), or the folder holds no `truth`.
    """
    if release.published.get("synthetic") is not True:
        raise CellcensusError(
            f"{source} {world}: the {what} release does not publish that its data are "
            f"synthetic, and only a synthetic world has its truth; leave {source} out"
        )
    if not (world / truth).exists():
        raise CellcensusError(
            f"{source} {world} holds no {truth}: give the folder `cellcensus synth --out` "
            "wrote, the one the holder ingested"
        )
