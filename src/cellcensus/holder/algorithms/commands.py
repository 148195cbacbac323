"""Commands of the catalogue: ``cellcensus algorithms`` and ``cellcensus run``."""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.markup import escape
from rich.table import Table

from cellcensus.console import console, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms.base import Algorithm
from cellcensus.holder.algorithms.registry import get_algorithm, registered_algorithms
from cellcensus.holder.engines import SPARK_ENVIRONMENT
from cellcensus.release import Release

if TYPE_CHECKING:
    from cellcensus.holder.enclave import Enclave

OUTPUT_SUFFIXES = (".csv", ".json")
ENGINE_HELP = (
    "duckdb or spark. Spark runs in local mode (local[2]) unless started by spark-submit; "
    f"the environment variables {', '.join(SPARK_ENVIRONMENT)} set its master, executor "
    "memory and shuffle partitions; in local mode Spark's own SPARK_DRIVER_MEMORY sets the "
    "memory of the one JVM that does the work (docs/spark.md)."
)


def register(app: typer.Typer) -> None:
    """Add the catalogue's commands to the `cellcensus` app."""
    app.command(name="algorithms")(algorithms_command)
    app.command(name="run")(run_command)


@user_errors
def algorithms_command(
    name: Annotated[
        str | None, typer.Argument(help="An algorithm: list its parameters instead.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full manifests (with JSON schemas).")
    ] = False,
) -> None:
    """List the algorithm catalogue, or one algorithm's parameters."""
    algorithms = registered_algorithms() if name is None else {name: get_algorithm(name)}
    if as_json:
        described = [algorithm.manifest.describe() for algorithm in algorithms.values()]
        console.print_json(json.dumps(described, default=str))
    elif name is None:
        console.print(_catalogue_table(algorithms))
        console.print("An algorithm's parameters: cellcensus algorithms NAME")
    else:
        console.print(_parameters_table(algorithms[name]))


def _catalogue_table(algorithms: dict[str, Algorithm]) -> Table:
    """One row per algorithm: what it is, what it releases, what one device adds at most."""
    table = Table(title="cellcensus algorithms")
    # Every word whole on an 80-column terminal: a key name cut short ("local_dat…") or
    # folded ("destinatio/n") is no name at all. One key a line, the certification level
    # under the version, the bound's unit on a line of its own.
    for column in ("name", "version", "keys"):
        table.add_column(column, no_wrap=True)
    table.add_column("bound per device", overflow="fold")
    for algorithm in algorithms.values():
        manifest = algorithm.manifest
        unit = f"\nper {'/'.join(manifest.unit_keys)}" if manifest.unit_keys else ""
        most, default = manifest.contribution_bound, manifest.default_bound()
        bound = f"{most:g}" if default in (None, most) else f"{default:g} ({most:g} at most)"
        table.add_row(
            manifest.name,
            f"{manifest.version}\n{manifest.certification}",
            "\n".join(manifest.key_names),
            f"{bound}{unit}",
        )
    table.caption = (
        "bound per device: the most one device adds to a release at the default parameters, "
        "and in brackets at the most permissive ones; a job's own follows from its parameters"
    )
    return table


def _parameters_table(algorithm: Algorithm) -> Table:
    """One row per parameter, nested ones by dotted name, as ``--param`` takes them."""
    manifest = algorithm.manifest
    return parameters_table(
        f"{manifest.name} {manifest.version}: --param NAME=VALUE", manifest.parameters
    )


def parameters_table(title: str, model: type[BaseModel]) -> Table:
    """The `parameter_rows` of `model` as a table, each cell printed as it is."""
    table = Table(title=title)
    table.add_column("name", no_wrap=True)
    for column in ("type", "default", "allowed", "description"):
        table.add_column(column, overflow="fold")  # a choice cut short cannot be typed
    for row in parameter_rows(model):
        table.add_row(*(escape(cell) for cell in row))  # a pattern's [a-z] is no markup
    return table


def parameter_rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, ...]]:
    """name, type, default, allowed values, description of each parameter of `model`."""
    rows: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            rows += parameter_rows(kind, f"{prefix}{name}.")
            continue
        rows.append(
            (
                prefix + name,
                _type_name(kind),
                _default_text(field),
                _allowed(field),
                field.description or "",
            )
        )
    return rows


def _default_text(field: FieldInfo) -> str:
    """A parameter's default as ``--param`` takes it; "required" where it has none."""
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    return "" if default is None else _value_text(default)


def _type_name(kind: Any) -> str:
    """A parameter's type in words: int, date or none, one of a | b, list of str."""
    args = [arg for arg in get_args(kind) if arg is not type(None)]
    if isinstance(kind, type) and issubclass(kind, Enum):
        return " | ".join(str(member.value) for member in kind)
    if get_origin(kind) is Literal:
        return " | ".join(str(arg) for arg in args)
    if get_origin(kind) is tuple:
        return f"list of {_type_name(args[0])}"
    if get_origin(kind) is Annotated:
        return _type_name(args[0])
    if len(args) < len(get_args(kind)):  # X | None
        return f"{_type_name(args[0])} or none"
    return getattr(kind, "__name__", str(kind))


def _value_text(value: Any) -> str:
    """A default as ``--param`` would take it (JSON where that differs from Python)."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool | tuple | list):
        return json.dumps(value, default=str)
    return _number(value) if isinstance(value, float) else str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _allowed(field: FieldInfo) -> str:
    """What a value must be, as the parameter's JSON schema says, from its constraints.

    The bounds of a number (">= 1, <= 366"), the pattern of a text ("matching ^[0-9]{8}$"),
    and of a list its most items and each item's own rules ("at most 100000 items, each
    matching ^[0-9]{8}$").
    """
    item = _item_type(field.annotation)
    if item is None:
        return ", ".join(_rules(field.metadata, unit="characters"))
    rules = _rules(field.metadata, unit="items")
    each = _rules(list(get_args(item)[1:]) if get_origin(item) is Annotated else [])
    if each:
        rules.append(f"each {', '.join(each)}")
    return ", ".join(rules)


def _item_type(kind: Any) -> Any:
    """The item type of a list parameter (``tuple[X, ...]``, or none), else None."""
    args = [arg for arg in get_args(kind) if arg is not type(None)]
    if get_origin(kind) is tuple:
        return args[0]
    if len(args) == 1 and len(args) < len(get_args(kind)):  # X | None
        return _item_type(args[0])
    return None


def _rules(metadata: list[Any], unit: str = "characters") -> list[str]:
    """Bounds, pattern and lengths among constraints (a `Field` in `Annotated` unpacked)."""
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    items = [inner for item in metadata for inner in _unpacked(item)]
    rules = [
        f"{sign} {_number(getattr(item, bound))}"
        for item in items
        for bound, sign in signs.items()
        if getattr(item, bound, None) is not None
    ]
    for item in items:
        if getattr(item, "min_length", None):
            rules.append(f"at least {_count(item.min_length, unit)}")
        if getattr(item, "max_length", None) is not None:
            rules.append(f"at most {_count(item.max_length, unit)}")
        if getattr(item, "pattern", None) is not None:
            rules.append(f"matching {item.pattern}")
    return rules


def _count(number: int, unit: str) -> str:
    """``1 item``, ``2 items``."""
    return f"{number} {unit if number != 1 else unit.removesuffix('s')}"


def _unpacked(item: Any) -> list[Any]:
    """A constraint, or the constraints of a `Field` given as ``Annotated`` metadata."""
    return list(item.metadata) if isinstance(item, FieldInfo) else [item]


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
            metavar="<name=value>",
            help="NAME=VALUE, repeatable; VALUE is JSON when it parses (3, true, [208]), else "
            "text; nested names with dots (filters.min_days=3).",
        ),
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "duckdb",
    level: Annotated[
        str,
        typer.Option(
            "--level",
            # The grid's level is written out: importing the geography here costs every
            # command of the catalogue half a second (a test checks it is GRID_LEVEL).
            help="Area level: municipality (allocated at ingest), inspire_1km (`cellcensus "
            "store allocate --grid`), or the --level of another `cellcensus store allocate`.",
        ),
    ] = "municipality",
    analyst: Annotated[str, typer.Option("--analyst", help="Who the job is for.")] = "holder",
) -> None:
    """Run one algorithm through the enclave (a recorded job); write only what is released."""
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CellcensusError(f"--out {out}: use a .csv or .json file name")
    if engine not in ("duckdb", "spark"):
        raise CellcensusError(f"--engine {engine!r}: choose duckdb or spark")
    chosen = get_algorithm(algorithm)
    parameters = parse_parameters(param or [])
    chosen.manifest.parse(parameters)  # refuse bad parameters before opening anything
    from cellcensus.holder.enclave import Enclave
    from cellcensus.holder.store.layout import require_store

    require_store(store)  # before the enclave keeps its state in the folder
    enclave = Enclave(store=store, engine="spark" if engine == "spark" else "duckdb")
    started = dt.datetime.now(dt.UTC)
    with console.status(f"running {algorithm} on {engine}"):
        release = enclave.run(
            algorithm=algorithm, parameters=parameters, analyst=analyst, level=level
        )
    written = release.write(out)  # a CSV gets its provenance beside it (NAME.provenance.json)
    if submitted_before(enclave, release, started):
        console.print(reuse_notice(release, engine=engine), highlight=False)
    console.print(
        f"released {len(release.table)} rows ({release.n_suppressed} suppressed) of "
        f"{algorithm} {chosen.manifest.version}, job {release.provenance.job_id} -> "
        + ", ".join(str(path) for path in written)
    )


def submitted_before(enclave: Enclave, release: Release, moment: dt.datetime) -> bool:
    """Whether the job that computed `release` was submitted before `moment`: reused.

    The enclave answers an identical request (same algorithm, version, parameters, level and
    policy; the engine is not part of it) with the release it already made: a second
    computation would draw fresh noise and spend the privacy budget again.
    """
    job = enclave.service.book.get(release.provenance.job_id)
    return job is not None and dt.datetime.fromisoformat(job.created_at) < moment


def reuse_notice(release: Release, *, engine: str) -> str:
    """What the user must know when `cellcensus run` computed nothing."""
    provenance = release.provenance
    notice = (
        f"reused the release of job {provenance.job_id} (computed on {provenance.engine} on "
        f"{provenance.created_at}) for this identical request: nothing was computed and no "
        "privacy budget was spent"
    )
    if provenance.engine != engine:
        notice += f"; {engine} did not run (to compare engines, see docs/spark.md)"
    return notice


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
