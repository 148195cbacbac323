"""A whole release (residents, present population, commuting) published from simulated counts."""

from __future__ import annotations

from pathlib import Path

from cellcensus.nso.production import EstimationResult
from cellcensus.nso.report.html import ReportContext
from cellcensus.nso.report.publish import PublishedRelease, publish_release
from cellcensus.reference import belgium


def publish_whole_release(
    out_dir: Path, residents: EstimationResult, *, job_id: str
) -> PublishedRelease:
    """Publish `residents` with a present population (day gain 1.4) and 2 % of the flows."""
    from tests.nso.test_mobility import _flows_release, _present_release

    from cellcensus.nso.mobility import estimate_commuting, estimate_present_population

    present = estimate_present_population(
        release=_present_release(residents, day_gain=1.4), residents=residents
    )
    commuting = estimate_commuting(
        release=_flows_release(belgium.commuting_matrix(), share=0.02), residents=residents
    )
    context = ReportContext(
        dataset="simulated",
        period_start="2011-03-07",
        period_end="2011-03-13",
        market_share=0.4,
        sampling_fraction=0.1,
        n_devices_released_total=1,
        suppression_threshold=15,
        algorithm_name="usual_residence",
        algorithm_version="simulated",
        job_id=job_id,
    )
    return publish_release(
        out_dir=out_dir,
        result=residents,
        context=context,
        present=present,
        commuting=commuting,
    )
