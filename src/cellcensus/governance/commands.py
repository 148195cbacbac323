"""Commands of the governance layer: `cellcensus assess` and `cellcensus cases`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cellcensus.console import console, user_errors
from cellcensus.errors import CellcensusError
from cellcensus.governance.assessment import (
    Answers,
    Assessment,
    assess,
    load_answers,
    load_decision_tree,
)
from cellcensus.governance.assessment.answers import answers_to_yaml
from cellcensus.governance.assessment.interview import Terminal, interview
from cellcensus.governance.assessment.report import write_reports
from cellcensus.governance.assessment.tree import DecisionTree
from cellcensus.governance.cases import CaseStudy, filter_cases, find_case, load_cases

cases_app = typer.Typer(
    help="Real case studies of sharing private data for public statistics.",
    no_args_is_help=False,
)


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `cellcensus` app."""
    app.command("assess")(assess_command)
    app.add_typer(cases_app, name="cases")


@user_errors
def assess_command(
    answers: Annotated[
        Path | None,
        typer.Option(
            "--answers",
            help="Answers file (YAML); without it the questions are asked interactively.",
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", help="Directory for assessment.md, .html, .json and answers.yaml."),
    ] = Path("assessment"),
    tree_file: Annotated[
        Path | None,
        typer.Option("--tree", help="A decision tree file other than the one shipped."),
    ] = None,
) -> None:
    """Assess the benefits and risks of sharing data, and recommend a business model."""
    tree = load_decision_tree(tree_file)
    _check_out(out)
    chosen = load_answers(answers, tree) if answers else interview(tree, _terminal())
    result = assess(tree, chosen, load_cases())
    written = write_reports(result, out)
    # The reports' folder keeps the answers they come from (an earlier session's would
    # mislead), except where the answers file read is that very file.
    saved = out / "answers.yaml"
    if answers is None or not (saved.exists() and saved.samefile(answers)):
        written.append(_save_answers(chosen, tree, saved))
    _print_summary(result, written)


def _check_out(out: Path) -> None:
    # Before the interview: a person should not answer every question to learn this.
    if out.exists() and not out.is_dir():
        raise CellcensusError(f"--out {out} is a file; give a directory for the reports")


def _terminal() -> Terminal:
    return Terminal(
        ask=lambda prompt: console.input(Text(prompt)),
        say=lambda text: console.print(text, markup=False, highlight=False),
    )


def _save_answers(chosen: Answers, tree: DecisionTree, path: Path) -> Path:
    path.write_text(answers_to_yaml(chosen, tree), encoding="utf-8")
    return path


def _print_summary(result: Assessment, written: list[Path]) -> None:
    # The title is the user's and the rest the tree's: escaped, so brackets print as typed.
    recommendation = result.recommendation
    quadrant = result.quadrant
    console.print()
    console.print(f"[bold]{escape(result.title)}[/]")
    console.print(
        f"Benefit score {result.benefit_score}/100, risk score {result.risk_score}/100: "
        f"[bold]{escape(quadrant.title)}[/]. {escape(quadrant.advice)}"
    )
    console.print(f"Recommended business model: [bold green]{escape(recommendation.title)}[/]")
    for reason in recommendation.reasons[:2]:
        console.print(f"  - {reason}", markup=False)
    console.print(f"Runner-up: {recommendation.runner_up_title}", markup=False)
    high = ", ".join(risk.title for risk in result.high_risks) or "none"
    console.print(f"High risks: {high}", markup=False)
    console.print("Written: " + ", ".join(str(path) for path in written), markup=False)


@cases_app.callback(invoke_without_command=True)
@user_errors
def cases_command(
    context: typer.Context,
    country: Annotated[
        str | None, typer.Option("--country", help="Part of a country name.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Business model, e.g. moving_algorithms.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Data source, e.g. telecom.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the case studies, filtered by country, business model or data source."""
    if context.invoked_subcommand is not None:
        return
    cases = filter_cases(load_cases(), country=country, model=model, source=source)
    if as_json:
        typer.echo(json.dumps([case.model_dump(mode="json") for case in cases], indent=2))
        return
    if not cases:
        console.print("No case study matches these filters; `cellcensus cases` lists them all.")
        return
    console.print(_cases_table(cases))


def _cases_table(cases: list[CaseStudy]) -> Table:
    """One row per case: its id (for `cases show`) over its title; where, when and how."""
    title = "1 case study" if len(cases) == 1 else f"{len(cases)} case studies"
    table = Table(title=title, show_lines=True)
    widest = max((len(case.id) for case in cases), default=0)  # an id stays whole, to copy
    table.add_column("case (id, title)", overflow="fold", min_width=widest)
    table.add_column("where, when, how", overflow="fold")
    for case in cases:
        years = "-".join(dict.fromkeys(str(year) for year in (min(case.years), max(case.years))))
        table.add_row(
            Text.assemble((case.id, "bold"), "\n", case.title),
            f"{', '.join(case.countries)} {years}\n{case.business_model}\n{case.source_type}",
        )
    return table


@cases_app.command("show")
@user_errors
def show_case_command(
    case_id: Annotated[str, typer.Argument(help="The case id, as listed by `cellcensus cases`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one case study with its sources."""
    case = find_case(load_cases(), case_id)
    if as_json:
        typer.echo(json.dumps(case.model_dump(mode="json"), indent=2))
        return
    for line in case_lines(case):  # unwrapped by Rich, so that every link can be copied whole
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def case_lines(case: CaseStudy) -> list[str]:
    """A case study as lines of text for the terminal."""
    lines = [
        case.title,
        f"  id: {case.id}",
        f"  countries: {', '.join(case.countries)}; years: {', '.join(map(str, case.years))}",
        f"  data holder: {case.data_holder}",
        f"  partners: {', '.join(case.partners) or '-'}",
        f"  source: {case.source_type}; domains: {', '.join(case.statistical_domains)}",
        f"  business model: {case.business_model} ({' '.join(case.business_model_note.split())})",
        f"  motivations: {', '.join(case.motivations) or 'not documented in the sources'}",
        f"  outcome: {' '.join(case.outcome.split())}",
    ]
    lines += [f"  safeguard: {item}" for item in case.privacy_safeguards]
    lines += [f"  risk met: {item}" for item in case.risks_met]
    lines += [f"  source: {source.title} <{source.url}>" for source in case.sources]
    return lines
