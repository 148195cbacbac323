"""Every registered algorithm passes the conformance suite (DuckDB; Spark agreement below)."""

import dataclasses

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import Certification, get_algorithm, registered_algorithms
from cellcensus.holder.algorithms import conformance as suite
from cellcensus.holder.algorithms.conformance import ConformanceError

from .conftest import with_examples

NAMES = sorted(registered_algorithms())


@pytest.mark.parametrize("name", NAMES)
def test_manifest(name):
    suite.check_manifest(get_algorithm(name))


@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_parameters_are_refused_by_name(name):
    suite.check_parameters_refused(get_algorithm(name))


@pytest.mark.parametrize("name", NAMES)
def test_schema_as_declared(name, world, period_runner):
    suite.check_schema(get_algorithm(name), world, period_runner)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name, world, period_runner):
    suite.check_deterministic(get_algorithm(name), world, period_runner)


@pytest.mark.parametrize("name", NAMES)
def test_contribution_bound_holds_against_a_million_event_device(name, world, period_runner):
    suite.check_contribution_bound(get_algorithm(name), world, period_runner, n_events=1_000_000)


@pytest.mark.parametrize("name", NAMES)
def test_day_by_day_gives_the_result_of_the_whole_period(name, world, period_runner):
    suite.check_day_by_day(get_algorithm(name), world, period_runner.con)


@pytest.mark.parametrize("name", NAMES)
def test_device_day_summaries_give_the_result_of_the_events(name, world, period_runner):
    suite.check_device_days(get_algorithm(name), world, period_runner)


DAILY = {"slot_minutes": 1440, "max_carry_minutes": 0, "subscribers": "inbound"}


@pytest.mark.spark
@pytest.mark.parametrize("name", ["device_filter", "usual_residence", "present_population"])
def test_spark_reads_device_day_summaries_as_duckdb(name, world, period_runner, spark_runner):
    # device_filter lists TACs and cells from the summaries; usual_residence then reads
    # the night events only; present_population the hourly positions (by position on
    # Spark, side by side on DuckDB) for hourly and daily slots, the ones it reads them for.
    algorithm = get_algorithm(name)
    sets = [{}, DAILY] if name == "present_population" else None
    summarised = dataclasses.replace(world, summarised=True)
    engines = {"duckdb": period_runner, "spark": spark_runner}
    suite.check_engines_agree(algorithm, summarised, engines, sets)


@pytest.mark.spark
@pytest.mark.parametrize("name", NAMES)
def test_spark_gives_the_same_results_as_duckdb(name, world, period_runner, spark_runner):
    algorithm = get_algorithm(name)
    first = suite.parameter_sets(algorithm)[:1]  # the defaults, if every parameter has one
    engines = {"duckdb": period_runner, "spark": spark_runner}
    suite.check_engines_agree(algorithm, world, engines, first)


def test_the_conformance_world_exercises_every_algorithm(world, period_runner):
    # A check that passes on empty output proves nothing: every parameter set gives rows.
    for name in NAMES:
        algorithm = get_algorithm(name)
        for values in suite.parameter_sets(algorithm):
            assert len(period_runner.run(algorithm, world, values)) > 0, (name, values)


BAYESIAN = {"spatial_estimator": "bayesian"}


def test_bayesian_residence_is_deterministic_and_keyed_by_area(world, period_runner):
    algorithm = with_examples("usual_residence", BAYESIAN)
    suite.check_schema(algorithm, world, period_runner)
    suite.check_deterministic(algorithm, world, period_runner)
    total = period_runner.run(algorithm, world, BAYESIAN).device_count.sum()
    assert total == pytest.approx(period_runner.run(algorithm, world, {}).device_count.sum())


def test_bayesian_residence_respects_the_bound_where_the_noise_goes(world, period_runner):
    # The enclave noises the counts per home cell and runs the estimator on them: the bound
    # holds there. On the areas it would not: the estimator redistributes other devices too.
    algorithm = with_examples("usual_residence", BAYESIAN)
    suite.check_contribution_bound(algorithm, world, period_runner, n_events=20_000)
    attacked = suite.attacked_world(world, n_events=20_000, mcc=suite.HOME_MCC)
    before = period_runner.run(algorithm, world, BAYESIAN).set_index("area_code")
    after = period_runner.run(algorithm, attacked, BAYESIAN).set_index("area_code")
    moved = (after.device_count - before.device_count.reindex(after.index).fillna(0)).abs()
    assert moved.sum() > 1.0


USUAL = {"slot_minutes": 30, "usual_place_after_minutes": 120}


@pytest.mark.spark
def test_spark_takes_the_same_usual_places_as_duckdb(world, period_runner, spark_runner):
    algorithm = get_algorithm("present_population")
    engines = {"duckdb": period_runner, "spark": spark_runner}
    suite.check_engines_agree(algorithm, world, engines, [USUAL])
    nearest = period_runner.run(algorithm, world, {**USUAL, "usual_place_after_minutes": 0})
    usual = period_runner.run(algorithm, world, USUAL)
    assert not usual.equals(nearest)  # the world has devices silent long enough


# The suite itself must catch broken algorithms.


def _broken(name, compute):
    algorithm = get_algorithm("usual_residence")
    manifest = dataclasses.replace(algorithm.manifest, name=name, examples=())
    return dataclasses.replace(algorithm, manifest=manifest, compute=compute)


def test_suite_catches_a_device_counted_once_per_event(world, period_runner):
    def per_event(tables, params):
        located = tables.events.join(tables.allocation, "cell_id")
        return located.group_by("area_code").agg(device_count=located.weight.sum())

    with pytest.raises(ConformanceError, match="changed the release by"):
        suite.check_contribution_bound(
            _broken("per_event", per_event), world, period_runner, n_events=1000
        )


def test_suite_catches_undeclared_columns(world, period_runner):
    def extra(tables, params):
        counts = get_algorithm("usual_residence").compute(tables, params)
        return counts.mutate(extra=1)

    with pytest.raises(ConformanceError, match="columns"):
        suite.check_schema(_broken("extra_column", extra), world, period_runner)


def test_suite_catches_an_order_dependent_result(world, period_runner):
    import ibis

    def first_row(tables, params):
        events = tables.events.mutate(n=ibis.row_number())
        first = events.filter(events.n < 100).join(tables.allocation, "cell_id")
        return first.group_by("area_code").agg(device_count=first.weight.sum())

    with pytest.raises(ConformanceError, match="shuffled"):
        suite.check_deterministic(_broken("order_dependent", first_row), world, period_runner)


def test_suite_catches_a_step_that_is_not_per_day(world, period_runner):
    # Distinct cells per device over the whole period is not a union of days: counted day
    # by day, a device's cells seen on several days count several times.
    from cellcensus.holder.algorithms.device_filter import (
        DeviceFilterParameters,
        Scope,
        Subscribers,
    )

    def cells_per_device(tables, params):
        scope = Scope(tables, params, Subscribers.ALL, DeviceFilterParameters())
        pairs = scope.daily(
            lambda events: events.select("device_id", "cell_id").distinct(),
            "device_id",
            "cell_id",
        )
        located = pairs.join(tables.allocation, "cell_id")
        return located.group_by("area_code").agg(device_count=located.weight.sum())

    with pytest.raises(ConformanceError, match="day by day differs"):
        suite.check_day_by_day(_broken("not_per_day", cells_per_device), world, period_runner.con)


def test_suite_catches_summaries_read_as_devices(world, period_runner):
    import ibis

    # A summary has a row per device and day: counting its rows counts devices once a day.
    def devices(tables, params):
        seen = tables.events if tables.device_days is None else tables.device_days
        seen = seen.select("device_id")
        if tables.device_days is None:
            seen = seen.distinct()
        return seen.aggregate(
            device_count=seen.count().cast("float64"), area_code=ibis.literal(world.areas[0])
        )

    with pytest.raises(ConformanceError, match="device-day summaries change"):
        suite.check_device_days(_broken("summary_rows", devices), world, period_runner)


def test_suite_catches_an_unbounded_parameter():
    from pydantic import Field

    from cellcensus.holder.algorithms.base import Parameters

    class Loose(Parameters):
        min_nights: int = Field(default=2, ge=1)

    algorithm = get_algorithm("usual_residence")
    loose = dataclasses.replace(
        algorithm,
        manifest=dataclasses.replace(algorithm.manifest, parameters=Loose, examples=()),
    )
    suite.check_parameters_refused(loose)  # ge=1 is refused by name
    with pytest.raises(CellcensusError, match="'min_nights'"):
        loose.manifest.parse({"min_nights": 0})


def test_third_party_algorithms_come_in_as_drafts(monkeypatch):
    from cellcensus.holder.algorithms import registry

    claimed = dataclasses.replace(
        get_algorithm("usual_residence"),
        manifest=dataclasses.replace(
            get_algorithm("usual_residence").manifest, name="third_party_homes"
        ),
    )

    class Entry:
        name = "third_party_homes"
        value = "plugin:homes"

        def load(self):
            return claimed

    monkeypatch.setattr(registry, "entry_points", lambda group: [Entry()])
    registry.registered_algorithms.cache_clear()
    try:
        found = registry.registered_algorithms()
        assert found["third_party_homes"].manifest.certification is Certification.DRAFT
        assert found["usual_residence"].manifest.certification is Certification.CERTIFIED
        suite.check_manifest(found["third_party_homes"])
    finally:
        registry.registered_algorithms.cache_clear()


def test_an_entry_point_that_is_not_an_algorithm_is_refused(monkeypatch):
    from cellcensus.holder.algorithms import registry

    class Entry:
        name = "junk"
        value = "plugin:junk"

        def load(self):
            return object()

    monkeypatch.setattr(registry, "entry_points", lambda group: [Entry()])
    registry.registered_algorithms.cache_clear()
    try:
        with pytest.raises(CellcensusError, match="junk"):
            registry.registered_algorithms()
    finally:
        registry.registered_algorithms.cache_clear()
