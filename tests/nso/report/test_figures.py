import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from shapely.geometry import MultiPolygon, Point, Polygon, box

from cellcensus.errors import CellcensusError
from cellcensus.nso.report import figures as figures_module
from cellcensus.nso.report.figures import (
    ACCENT,
    CONTRAST,
    DENSITY_BREAKS,
    DENSITY_COLOURS,
    LIGHT_ACCENT,
    _metrics_text,
    class_labels,
    classify,
    draw_side_by_side_maps,
    estimator_chart,
    flow_scatter,
    geometry_path,
    hourly_chart,
    interval_chart,
    percent_tick,
    project,
    relative_error_map,
    scatter_log,
    side_by_side_maps,
)
from cellcensus.nso.validation import agreement
from cellcensus.reference import belgium

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def toy_areas() -> pd.DataFrame:
    """Four squares around Brussels, two of them in region 4000 (the inset)."""
    squares = [box(4.2 + 0.1 * i, 50.8, 4.3 + 0.1 * i, 50.9) for i in range(4)]
    return pd.DataFrame(
        {
            "area_code": ["21001", "21004", "23002", "23003"],
            "region": ["4000", "4000", "2000", "2000"],
            "area_km2": [80.0] * 4,
            "geometry": squares,
        }
    )


def test_classify_puts_each_value_in_its_half_open_class() -> None:
    values = pd.Series([0, 49.9, 50, 3199, 3200, 1e6, np.nan], index=list("abcdefg"))

    classes = classify(values=values, breaks=DENSITY_BREAKS)

    assert classes.iloc[:6].tolist() == [0, 0, 1, 6, 7, 7]
    assert classes.isna().tolist() == [False] * 6 + [True]
    assert list(classes.index) == list("abcdefg")


def test_classify_refuses_bad_breaks_and_values_outside() -> None:
    with pytest.raises(CellcensusError, match="increasing"):
        classify(values=pd.Series([1.0]), breaks=[0, 10, 10])
    with pytest.raises(CellcensusError, match="outside"):
        classify(values=pd.Series([-1.0]), breaks=DENSITY_BREAKS)


def test_class_labels_read_like_a_legend() -> None:
    labels = class_labels(breaks=DENSITY_BREAKS, fmt=lambda v: f"{v:,.0f}")

    assert labels[0] == "under 50"
    assert labels[3] == "200 – 400"
    assert labels[-1] == "3,200 and over"
    assert len(labels) == len(DENSITY_COLOURS)


def rendered(path: MplPath, *, xlim: tuple[float, float], ylim: tuple[float, float]) -> np.ndarray:
    """Fill `path` in black on a 100 x 100 pixel white canvas; return grey levels (row 0 = top)."""
    figure = Figure(figsize=(1, 1), dpi=100)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set(xlim=xlim, ylim=ylim)
    axes.set_axis_off()
    axes.add_collection(PathCollection([path], facecolors="black", edgecolors="none"))
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    return np.asarray(canvas.buffer_rgba())[:, :, 0]  # type: ignore[no-untyped-call]


def test_geometry_path_fills_every_part_and_leaves_holes_empty() -> None:
    with_hole = Polygon(box(0, 0, 10, 10).exterior.coords, [box(4, 4, 6, 6).exterior.coords])
    multi = MultiPolygon([with_hole, box(10, 0, 20, 10)])

    pixels = rendered(geometry_path(multi), xlim=(0, 20), ylim=(0, 10))

    assert pixels[50, 10] == 0  # first part
    assert pixels[50, 25] == 255  # its hole
    assert pixels[50, 75] == 0  # second part
    assert np.asarray(geometry_path(Point(0, 0)).vertices).size == 0


def test_projection_is_belgian_lambert_2008_north_up() -> None:
    points = pd.Series([Point(4.3517, 50.8466), Point(4.3517, 51.2194)])  # Brussels, Antwerp lat

    projected = project(geometries=points)

    brussels, north = projected
    assert brussels.x == pytest.approx(649_000, abs=2_000)
    assert brussels.y == pytest.approx(670_800, abs=2_000)
    assert north.y - brussels.y == pytest.approx(41_450, rel=0.01)


def test_both_maps_share_the_same_classes_and_colours(toy_areas: pd.DataFrame) -> None:
    census = pd.Series([5000.0, 150.0, 60.0, 20.0], index=toy_areas["area_code"])
    estimate = pd.Series([4000.0, 250.0, np.nan, 20.0], index=toy_areas["area_code"])

    figure = draw_side_by_side_maps(
        areas=toy_areas, estimate_density=estimate, census_density=census
    )

    maps = figure.axes[:2]
    assert [axes.get_title() for axes in maps] == [
        "Based on mobile phone data",
        "Based on 2011 census",
    ]
    for axes, density in zip(maps, (estimate, census), strict=True):
        filled = axes.collections[1]
        assert isinstance(filled, PathCollection)  # 0 is the outline under the fills
        expected = [
            DENSITY_COLOURS[int(c)]
            for c in classify(values=density, breaks=DENSITY_BREAKS).dropna()
        ]
        faces = np.asarray(filled.get_facecolor())
        assert [to_hex(tuple(colour)) for colour in faces] == expected
    hatched = [c for c in maps[0].collections if c.get_hatch()]
    assert len(hatched) == 1 and len(hatched[0].get_paths()) == 1
    assert not [c for c in maps[1].collections if c.get_hatch()]
    legend = figure.legends[0]
    assert legend.get_title().get_text() == "Inhabitants per km²"
    assert "Suppressed (too few devices)" in [t.get_text() for t in legend.get_texts()]


def test_the_legend_says_what_the_density_counts(toy_areas: pd.DataFrame) -> None:
    density = pd.Series([5000.0, 150.0, 60.0, 20.0], index=toy_areas["area_code"])

    figure = draw_side_by_side_maps(
        areas=toy_areas,
        estimate_density=density,
        census_density=density,
        legend_title="Persons present per km²",
    )

    assert figure.legends[0].get_title().get_text() == "Persons present per km²"


def test_equal_values_get_equal_colours_on_both_maps(toy_areas: pd.DataFrame) -> None:
    density = pd.Series([5000.0, 150.0, 60.0, 20.0], index=toy_areas["area_code"])

    figure = draw_side_by_side_maps(
        areas=toy_areas, estimate_density=density, census_density=density
    )

    left, right = (axes.collections[1] for axes in figure.axes[:2])
    assert isinstance(left, PathCollection) and isinstance(right, PathCollection)
    np.testing.assert_array_equal(left.get_facecolor(), right.get_facecolor())


def test_side_by_side_maps_writes_a_png(tmp_path: Path, toy_areas: pd.DataFrame) -> None:
    density = pd.Series([5000.0, 150.0, 60.0, 20.0], index=toy_areas["area_code"])

    out = side_by_side_maps(
        areas=toy_areas,
        estimate_density=density,
        census_density=density,
        out=tmp_path / "sub" / "maps.png",
    )

    assert out == tmp_path / "sub" / "maps.png"
    assert png_size(out) == (1800, 990)


def test_scatter_and_error_map_write_pngs(tmp_path: Path, toy_areas: pd.DataFrame) -> None:
    census = pd.Series([50_000.0, 1_500.0, 600.0, 200.0], index=toy_areas["area_code"])
    estimate = census * pd.Series([1.1, 0.8, np.nan, 1.0], index=census.index)
    metrics = agreement(estimate=estimate, reference=census)

    scatter = scatter_log(estimate=estimate, census=census, out=tmp_path / "s.png", metrics=metrics)
    error = relative_error_map(
        areas=toy_areas, estimate=estimate, census=census, out=tmp_path / "e.png"
    )

    assert png_size(scatter) == (1050, 1050)
    assert png_size(error) == (1125, 1050)


def test_real_belgian_maps_are_drawn(tmp_path: Path) -> None:
    areas = belgium.municipalities()
    census = belgium.census_population().set_index("area_code")["population"].astype(float)
    rng = np.random.default_rng(3)
    estimate = (census * rng.lognormal(0, 0.1, len(census))).where(census > 1_000)
    km2 = areas.set_index("area_code")["area_km2"]
    started = time.perf_counter()

    out = side_by_side_maps(
        areas=areas,
        estimate_density=estimate / km2,
        census_density=census / km2,
        out=tmp_path / "belgium.png",
        note=belgium.CITATION,
    )

    assert time.perf_counter() - started < 20
    assert png_size(out) == (1800, 990)
    assert out.stat().st_size > 100_000  # 589 coloured municipalities, not an empty frame
    assert not math.isnan(estimate.sum())


def test_the_scatter_box_gives_the_log_log_slope() -> None:
    measured = agreement(
        estimate=pd.Series([110.0, 1_050.0, 9_800.0], index=["a", "b", "c"]),
        reference=pd.Series([100.0, 1_000.0, 10_000.0], index=["a", "b", "c"]),
    )

    text = _metrics_text(measured)

    assert f"log-log slope = {measured.log_slope:.3f}" in text.splitlines()


def test_percent_ticks_keep_the_decimals_they_need() -> None:
    # Ticks every 2.5 % were labelled 0%, 2%, 5%, 8%: two labels did not match their tick.
    assert [percent_tick(step * 0.025) for step in range(5)] == ["0%", "2.5%", "5%", "7.5%", "10%"]
    assert percent_tick(0.5, signed=True) == "+50%"
    assert percent_tick(-0.2, signed=True) == "\N{MINUS SIGN}20%"
    assert percent_tick(0.0, signed=True) == "0%"


def _luminance(colour: str) -> float:
    channels = [
        value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
        for value in to_rgb(colour)
    ]
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def contrast(colour: str, against: str = "#ffffff") -> float:
    """The WCAG 2.1 contrast ratio of two colours."""
    low, high = sorted((_luminance(colour), _luminance(against)))
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the chart functions draw, kept instead of written."""
    figures: list[Figure] = []

    def keep(*, figure: Figure, out: Path) -> Path:
        figures.append(figure)
        return out

    monkeypatch.setattr(figures_module, "_save", keep)
    return figures


def marker_shapes(figure: Figure) -> list[tuple[int, ...]]:
    """The shape of each scatter's marker: its path's codes."""
    return [
        tuple(np.asarray(collection.get_paths()[0].codes).tolist())
        for axes in figure.axes
        for collection in axes.collections
        if isinstance(collection, PathCollection) and np.asarray(collection.get_offsets()).size
    ]


def test_the_colours_of_the_charts_stand_out_against_white() -> None:
    # WCAG 2.1 1.4.11: 3:1 for the parts of a chart needed to read it. The old hold-out
    # orange, #f0a868, had 2.0:1; the old lighter blue, #7fa7d1, 2.5:1.
    for colour in (ACCENT, CONTRAST, LIGHT_ACCENT):
        assert contrast(colour) >= 3, colour


def test_an_interval_that_misses_the_census_is_a_cross_not_only_another_colour(
    drawn: list[Figure], tmp_path: Path
) -> None:
    census = np.array([1_000.0, 5_000.0, 20_000.0, 80_000.0])
    table = pd.DataFrame(
        {
            "census": census,
            "estimate": census * [1.1, 0.9, 1.3, 1.0],
            "ci_lower": census * [1.0, 0.8, 1.2, 0.95],
            "ci_upper": census * [1.2, 1.05, 1.4, 1.05],
        }
    )

    interval_chart(table=table, out=tmp_path / "intervals.png")

    covers, misses = marker_shapes(drawn[0])
    assert covers != misses
    colours = [
        to_hex(np.asarray(collection.get_facecolor())[0])
        for collection in drawn[0].axes[0].collections
        if isinstance(collection, PathCollection)
    ]
    assert colours == [ACCENT, CONTRAST]


def test_flows_within_and_between_areas_differ_in_shape_too(
    drawn: list[Figure], tmp_path: Path
) -> None:
    keys = pd.Index(["a|a", "a|b", "b|a", "b|b"])
    census = pd.Series([900.0, 100.0, 120.0, 800.0], index=keys)
    flow_scatter(
        estimate=census * 1.05,
        census=census,
        within=pd.Series([True, False, False, True], index=keys),
        out=tmp_path / "flows.png",
        metrics=agreement(estimate=census * 1.05, reference=census),
    )

    between, within = marker_shapes(drawn[0])
    assert between != within


def test_the_lines_of_the_hourly_chart_differ_in_dashes_and_markers(
    drawn: list[Figure], tmp_path: Path
) -> None:
    hours = pd.Series(np.linspace(1.0, 2.0, 24), index=range(24))
    hourly_chart(
        series={"phones": hours, "truth": hours * 1.1},
        out=tmp_path / "hourly.png",
        title="t",
        marks=(3, 11),
    )

    lines = [
        line for line in drawn[0].axes[0].get_lines() if np.asarray(line.get_xdata()).size == 24
    ]
    assert len(lines) == 2
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert lines[0].get_marker() != lines[1].get_marker()


def test_the_default_estimator_is_named_and_the_hold_out_bars_hatched(
    drawn: list[Figure], tmp_path: Path
) -> None:
    comparison = pd.DataFrame(
        {
            "label": ["National factor", "Raking to margins"],
            "weighted_ape": [0.1, 0.06],
            "ape_median": [0.11, 0.07],
            "holdout_weighted_ape": [0.105, 0.065],
            "holdout_ape_median": [0.11, 0.072],
        },
        index=pd.Index(["national", "raking"]),
    )

    estimator_chart(comparison=comparison, out=tmp_path / "estimators.png", default="raking")

    axes = drawn[0].axes[0]
    labels = [tick.get_text() for tick in axes.get_yticklabels()]
    assert "Raking to margins (default)" in labels and "National factor" in labels
    hatches = {bar.get_hatch() for bar in axes.patches}
    assert hatches == {None, "////"}  # the bars fitted on all areas plain, hold-out hatched
