"""Where the residents' error against the census comes from: the sample, or the spatial step.

Usage:
    python benchmarks/bench_residents_floor.py --world DIR [--key-file FILE]

DIR is a `cellcensus demo --out DIR` folder of a synthetic world (``dataset/`` with
``truth/``, ``store/`` with its tile footprint, the demo's ``holder.key``). The tile
posterior places each device as `usual_residence` does (default parameters, exact counts, no
disclosure noise); the statistics office's estimators then run on counts per municipality
built four ways, and each line prints the weighted APE against the census 2011 of the
default estimator, of GREG to provinces, and their ratio to the first line's GREG:

- ``true homes``: every placed device of a person at that person's true home (M2M SIMs
  where the posterior put them): what the sample alone leaves (the baseline);
- ``half the spatial error``, ``three quarters``: the posterior's counts moved half or a
  quarter of the way back to the true homes;
- ``posterior``: the posterior's counts as they are.

docs/estimation.md reads it: at 0.1 x 28 days the two errors weigh about the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_home_posterior import PEOPLE, true_homes  # noqa: E402

from cellcensus.holder.algorithms.areas import allocation_on  # noqa: E402
from cellcensus.holder.algorithms.posterior import posterior_areas  # noqa: E402
from cellcensus.holder.algorithms.usual_residence import (  # noqa: E402
    UsualResidenceParameters,
    homes_and_nights,
)
from cellcensus.holder.enclave import Enclave  # noqa: E402
from cellcensus.holder.enclave.compute import open_tables  # noqa: E402
from cellcensus.holder.store import Store  # noqa: E402
from cellcensus.nso.client import InProcessClient  # noqa: E402
from cellcensus.nso.residents import ALGORITHM, estimate_residents  # noqa: E402
from cellcensus.release import Release  # noqa: E402

WAYS = {"true homes": 0.0, "half the spatial error": 0.5, "three quarters": 0.75, "posterior": 1.0}
"""Each way's share of the posterior's own error (0: at the true homes)."""


def placed_counts(world: Path, key_file: Path) -> pd.DataFrame:
    """Per municipality: ``posterior`` (all placed devices), ``people`` (the persons' among
    them, as placed) and ``true`` (the same persons' devices at their true homes)."""
    tables = open_tables(Store(world / "store"))
    assert tables.footprint is not None, "build it: cellcensus store allocate --tile-footprint"
    params = UsualResidenceParameters()
    homes, nights = homes_and_nights(tables, params)
    allocation = allocation_on(tables.allocation, params.end)
    shares = posterior_areas(nights, homes, tables.footprint, allocation, tables.materialize)
    placed = shares.to_pandas()
    home, _ = true_homes(world, key_file)
    people = placed[placed["device_id"].isin(home.index)]
    devices = people["device_id"].drop_duplicates()
    return pd.DataFrame(
        {
            "posterior": placed.groupby("area_code")["share"].sum(),
            "people": people.groupby("area_code")["share"].sum(),
            "true": home.reindex(devices).value_counts(),
        }
    ).fillna(0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--key-file", type=Path)
    args = parser.parse_args()
    counts = placed_counts(args.world, args.key_file or args.world / "holder.key")
    counts.index = counts.index.astype(str)
    # The release's published facts and declared noise, with the counts swapped in.
    client = InProcessClient(runner=Enclave(store=args.world / "store").run, analyst="bench")
    release = client.run(algorithm=ALGORITHM, parameters={"spatial_estimator": "posterior"})
    machines = counts["posterior"] - counts["people"]
    baseline = None
    kinds = " and ".join(PEOPLE)
    print(f"devices of persons placed ({kinds} SIMs): {counts['true'].sum():,.0f}")
    for way, error in WAYS.items():
        per_area = machines + counts["true"] + error * (counts["people"] - counts["true"])
        result = estimate_residents(with_counts(release, per_area))
        default = result.outcomes[result.default].agreement.weighted_ape
        greg = result.outcomes["greg_calibrated"].agreement.weighted_ape
        baseline = baseline or greg
        print(
            f"{way:24s} default ({result.default}) {default:.2%}  "
            f"GREG {greg:.2%}  x{greg / baseline:.2f}",
            flush=True,
        )


def with_counts(release: Release, per_area: pd.Series) -> Release:
    """`release` with each municipality's device count replaced (rounded, as released)."""
    table = release.table.copy()
    codes = table["area_code"].astype(str)
    table["device_count"] = codes.map(per_area).fillna(0.0).round().to_numpy()
    return dataclasses.replace(release, table=table)


if __name__ == "__main__":
    main()
