"""Commands of the catalogue: ``cellcensus algorithms`` and ``cellcensus run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cellcensus.console import console, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.registry import get_algorithm, registered_algorithms

OUTPUT_SUFFIXES = (".csv", ".json")


def register(app: typer.Typer) -> None:
    """Add the catalogue's commands to the `cellcensus` app."""
    app.command(name="algorithms")(algorithms_command)
    app.command(name="run")(run_command)


@user_errors
def algorithms_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full manifests (with JSON schemas).")
    ] = False,
) -> None:
    """List the algorithm catalogue: name, version, certification, keys, parameters."""
    algorithms = registered_algorithms()
    if as_json:
        described = [algorithm.manifest.describe() for algorithm in algorithms.values()]
        console.print_json(json.dumps(described, default=str))
        return
    table = Table(title="cellcensus algorithms")
    table.add_column("name", no_wrap=True)
    for column in ("version", "level", "keys", "bound", "parameters"):
        table.add_column(column)
    for algorithm in algorithms.values():
        manifest = algorithm.manifest
        unit = f" per {'/'.join(manifest.unit_keys)}" if manifest.unit_keys else ""
        table.add_row(
            manifest.name,
            manifest.version,
            str(manifest.certification),
            ", ".join(manifest.key_names),
            f"{manifest.contribution_bound:g}{unit}",
            ", ".join(manifest.parameters.model_fields),
        )
    console.print(table)


@user_errors
def run_command(
    algorithm: Annotated[str, typer.Argument(help="Algorithm name (see `cellcensus algorithms`).")],
    store: Annotated[Path, typer.Option("--store", help="The holder's store folder.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Release file: .json, or .csv (table) with NAME.provenance.json beside it.",
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="NAME=VALUE, repeatable; VALUE is JSON when it parses (3, true, [208]), else "
            "text; nested names with dots (filters.min_days=3).",
        ),
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb or spark.")] = "duckdb",
    level: Annotated[
        str, typer.Option("--level", help="Area level of the allocation.")
    ] = "municipality",
    analyst: Annotated[str, typer.Option("--analyst", help="Who the job is for.")] = "holder",
) -> None:
    """Run one algorithm through the enclave (a recorded job); write only what is released."""
    from cellcensus.holder.enclave import Enclave

    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CellcensusError(f"--out {out}: use a .csv or .json file name")
    if engine not in ("duckdb", "spark"):
        raise CellcensusError(f"--engine {engine!r}: choose duckdb or spark")
    chosen = get_algorithm(algorithm)
    parameters = parse_parameters(param or [])
    chosen.manifest.parse(parameters)  # refuse bad parameters before opening anything
    enclave = Enclave(store=store, engine="spark" if engine == "spark" else "duckdb")
    with console.status(f"running {algorithm} on {engine}"):
        release = enclave.run(
            algorithm=algorithm, parameters=parameters, analyst=analyst, level=level
        )
    written = release.write(out)  # a CSV gets its provenance beside it (NAME.provenance.json)
    console.print(
        f"released {len(release.table)} rows ({release.n_suppressed} suppressed) of "
        f"{algorithm} {chosen.manifest.version}, job {release.provenance.job_id} -> "
        + ", ".join(str(path) for path in written)
    )


def parse_parameters(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as a (nested) parameter dict; VALUE parsed as JSON if it can be."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise CellcensusError(f"--param {pair!r}: write NAME=VALUE, e.g. min_nights=3")
        *parents, leaf = name.strip().split(".")
        target = parameters
        for parent in parents:
            child = target.setdefault(parent, {})
            if not isinstance(child, dict):
                raise CellcensusError(f"--param {pair!r}: {parent} is not a group of parameters")
            target = child
        target[leaf] = _value(text)
    return parameters


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
