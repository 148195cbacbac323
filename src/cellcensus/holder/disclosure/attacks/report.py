"""Run every attack against every kind of release and print the figures as a table.

``python -m cellcensus.holder.disclosure.attacks`` prints the table recorded in
docs/disclosure.md (a minute or two: the DP releases draw OpenDP noise cell by cell), the
grid simulation's rows first, then the synthetic world's (`world_attack_figures`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from cellcensus.holder.disclosure.attacks.differencing import differencing_attack
from cellcensus.holder.disclosure.attacks.membership_inference import (
    membership_attack,
    worst_case_auc,
)
from cellcensus.holder.disclosure.attacks.mobility import HOURS
from cellcensus.holder.disclosure.attacks.releases import (
    Protection,
    cellcensus_release,
    exact_release,
    noise_only_release,
    threshold_release,
)
from cellcensus.holder.disclosure.attacks.trajectory_recovery import trajectory_attack
from cellcensus.holder.disclosure.attacks.world import (
    MEMBERSHIP_DAYS,
    RELEASED_ALGORITHM,
    WORLD,
    PresenceTruth,
    membership_regions,
    presence_truth,
    present_population_calibration,
    present_population_release,
    strongest_adversary_auc,
    world_membership_attack,
    world_trajectory_attack,
)
from cellcensus.holder.disclosure.noise import laplace_scale
from cellcensus.holder.disclosure.policy import DisclosurePolicy, policy_for

SLOTS = 12
"""Time slots of the membership game's releases (one region per device and slot)."""
WORLD_DATES = [WORLD.start + dt.timedelta(days=day) for day in range(WORLD.days)]


@dataclass(frozen=True)
class AttackFigure:
    """One attack against one kind of release."""

    attack: str
    release: str
    measure: str
    value: float
    reference: str


def attack_figures(
    *, policy: DisclosurePolicy | None = None, seed: int = 2017
) -> list[AttackFigure]:
    """Run all attacks against exact, threshold-only, noise-only and cellcensus releases.

    Args:
        policy: The cellcensus policy attacked (default: the default policy, with DP).
        seed: Seed of the synthetic scenarios.
    """
    chosen = policy or policy_for(algorithm="usual_residence")
    return [
        *_differencing(chosen, seed=seed),
        *_trajectories(chosen, seed=seed),
        *_membership(chosen, seed=seed),
    ]


def world_attack_figures(*, seed: int = 2017) -> list[AttackFigure]:
    """Trajectory recovery and membership inference on the synthetic world (`attacks.world`).

    Hourly counts per municipality released as `present_population` is: its default policy,
    noise calibrated to every date and slot of the release.

    Args:
        seed: Seed of the persons drawn and of the games (the world's own seed is fixed).
    """
    truth = presence_truth()
    return [*_world_trajectories(truth, seed=seed), *_world_membership(truth, seed=seed)]


def _world_releases(dates: list[dt.date]) -> dict[str, Protection]:
    policy, bound, units = present_population_calibration(dates=dates)
    return {
        "exact": exact_release(),
        "threshold only (FlowKit)": threshold_release(min_count=policy.min_count),
        "noise only (DP)": noise_only_release(
            epsilon=policy.epsilon, contribution_bound=bound, units=units, dp_policy=policy.dp
        ),
        "cellcensus": present_population_release(dates=dates, rounding_key=b"attack-report"),
    }


def _world_trajectories(truth: PresenceTruth, *, seed: int) -> Iterator[AttackFigure]:
    for name, protection in _world_releases(truth.dates).items():
        outcome = world_trajectory_attack(truth, protection=protection, seed=seed)
        yield AttackFigure(
            "trajectory recovery (world)",
            name,
            "accuracy",
            outcome.accuracy,
            f"population baseline {outcome.baseline:.3f}",
        )


def _world_membership(truth: PresenceTruth, *, seed: int) -> Iterator[AttackFigure]:
    dates = truth.dates[:MEMBERSHIP_DAYS]
    for name, protection in _world_releases(dates).items():
        outcome = world_membership_attack(truth, protection=protection, seed=seed)
        yield AttackFigure("membership inference (world)", name, "AUC", outcome.auc, "bar 0.60")
    cells = HOURS * MEMBERSHIP_DAYS * len(membership_regions())
    yield AttackFigure(
        "membership inference (world)",
        "cellcensus, strongest adversary (exact)",
        "AUC",
        strongest_adversary_auc(dates=dates, cells=cells),
        "bar 0.60",
    )


def _differencing(policy: DisclosurePolicy, *, seed: int) -> Iterator[AttackFigure]:
    key = b"attack-report"
    releases = {
        "exact": exact_release(),
        "threshold only (FlowKit)": threshold_release(min_count=policy.min_count),
        "threshold + rounding": cellcensus_release(
            policy=DisclosurePolicy(min_count=policy.min_count),
            contribution_bound=1.0,
            rounding_key=key,
        ),
        "cellcensus": cellcensus_release(policy=policy, contribution_bound=1.0, rounding_key=key),
    }
    for name, protection in releases.items():
        outcome = differencing_attack(protection=protection, pairs=100, seed=seed)
        yield AttackFigure("differencing", name, "accuracy", outcome.accuracy, "guessing 0.50")
        yield AttackFigure(
            "differencing", name, "mean abs error (devices)", outcome.mean_abs_error, "exact 0"
        )


def _trajectories(policy: DisclosurePolicy, *, seed: int) -> Iterator[AttackFigure]:
    for name, protection in _hourly_releases(policy, bound=HOURS).items():
        outcome = trajectory_attack(protection=protection, seed=seed)
        yield AttackFigure(
            "trajectory recovery",
            name,
            "accuracy",
            outcome.accuracy,
            f"population baseline {outcome.baseline:.2f}",
        )


def _membership(policy: DisclosurePolicy, *, seed: int) -> Iterator[AttackFigure]:
    for name, protection in _hourly_releases(policy, bound=SLOTS).items():
        outcome = membership_attack(protection=protection, seed=seed)
        yield AttackFigure("membership inference", name, "AUC", outcome.auc, "guessing 0.50")
    scale = laplace_scale(epsilon=policy.epsilon, contribution_bound=1.0)
    yield AttackFigure(
        "membership inference",
        "cellcensus, strongest adversary (exact)",
        "AUC",
        worst_case_auc(scale=scale, rounding_base=policy.rounding_base),
        "bar 0.60",
    )


def _hourly_releases(policy: DisclosurePolicy, *, bound: float) -> dict[str, Protection]:
    return {
        "exact": exact_release(),
        "threshold only (FlowKit)": threshold_release(min_count=policy.min_count),
        "noise only (DP)": noise_only_release(epsilon=policy.epsilon, contribution_bound=bound),
        "cellcensus": cellcensus_release(
            policy=policy, contribution_bound=bound, rounding_key=b"attack-report"
        ),
    }


def print_figures(figures: list[AttackFigure], *, console: Console | None = None) -> None:
    """Print the figures as a Rich table."""
    table = Table(title="Attacks on released aggregates")
    for column in ("attack", "release", "measure", "value", "reference"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for figure in figures:
        table.add_row(
            figure.attack, figure.release, figure.measure, f"{figure.value:.3f}", figure.reference
        )
    (console or Console()).print(table)


def main() -> None:
    """Run the attacks at the default policy and print the table."""
    policy = policy_for(algorithm="usual_residence")
    console = Console()
    console.print(f"Default policy: {policy.to_dict()}")
    figures = attack_figures(policy=policy)
    world_policy, bound, units = present_population_calibration(dates=WORLD_DATES)
    console.print(
        f"World rows: {RELEASED_ALGORITHM} default policy {world_policy.to_dict()}, "
        f"contribution bound {bound:g} per unit, {units} units (dates x slots) "
        "for trajectories, 24 for membership"
    )
    print_figures([*figures, *world_attack_figures()], console=console)
