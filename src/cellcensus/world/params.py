"""Parameters of the synthetic country: what is sampled, how people move, how phones talk."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from cellcensus.errors import CellcensusError

EVENT_TYPES = ("call_out", "call_in", "sms_out", "sms_in", "data")
"""Event types the devices emit (a subset of SCHEMA.md's; no location updates yet)."""

DEFAULT_EVENT_TYPE_SHARES: tuple[float, ...] = (0.13, 0.13, 0.095, 0.095, 0.55)
"""Share of each of `EVENT_TYPES`: data sessions dominate, as in present-day CDR/xDR feeds."""

# fmt: off
DEFAULT_HOURLY_ACTIVITY: tuple[float, ...] = (
    # 00-06: a quiet night, but never silent (background data, late messages).
    1.5, 0.8, 0.5, 0.4, 0.4, 0.6, 1.5,
    # 07-19: ramp up with the morning commute, a plateau, a peak in the early evening.
    3.0, 4.5, 5.0, 5.2, 5.4, 5.6, 5.4, 5.2, 5.2, 5.4, 5.8, 6.0, 6.0,
    # 20-23: evenings are busy, then calm down.
    5.5, 5.0, 4.0, 2.8,
)
# fmt: on
"""Relative activity per local hour (0-23); about a quarter of events fall at night (20-07)."""


@dataclass(frozen=True, kw_only=True)
class WorldParams:
    """Everything that shapes a synthetic Belgium; the defaults are the documented model.

    Attributes:
        scale: Sampling fraction of the census 2011 population, in (0, 1]: each municipality
            gets ``round(population * scale)`` persons.
        days: Number of days of network events, 1-366.
        seed: Seed of every random draw; the same seed gives byte-identical files.
        market_share: Probability that a person subscribes to the operator, in (0, 1].
        start: First local calendar day (default Monday 7 March 2011, in the census year;
            periods longer than 20 days cross the DST change of 27 March, which is handled).
        sites: Antenna sites of the operator, independent of `scale`: the network exists
            whatever the sample. About 3,500 is one Belgian operator's macro grid.
        site_population_weight: Share of the sites (beyond one per municipality) placed in
            proportion to population (capacity); the rest follow land area (coverage), so
            cities are dense and the Ardennes sparse.
        working_ages: Youngest and oldest age at which a person can work (inclusive).
        work_attendance: Probability that a worker is at work on a given weekday (leave,
            sickness, part-time and home working keep the others at home).
        work_hours: Local hours ``[start, end)`` spent at work on a working day.
        night_hours: Local hours ``[start, end)`` (wrapping midnight) everybody spends at home.
        other_in_home_area: Probability that a person's "other" place (shops, family, sport)
            lies in the home municipality rather than in a nearby one.
        other_distance_km: Scale of the exponential distance decay when the other place lies
            in another municipality.
        outing_probability: Probability that a person visits the other place on a given day.
        outing_hours: Shortest and longest visit to the other place, in hours (inclusive).
        event_rate_median: Median events per device and day.
        event_rate_floor: Events per day that every device makes at least. The per-device
            rate is ``floor + lognormal`` so that even the quietest device averages about one
            event per night (about two for the median device): home detection needs night
            events, and real devices keep a background of data sessions.
        event_rate_sigma: Log-scale spread of the lognormal part: the heavy tail (the top
            10% of devices make about 35% of the events with the defaults).
        weekend_activity: Multiplier of the event rate on Saturdays and Sundays.
        hourly_activity: Relative activity per local hour 0-23 (more by day than by night).
        event_type_shares: Share of each of `EVENT_TYPES` among events; sums to 1.
        presence_persons: At most this many persons (a simple random sample) get hourly
            presence ground truth, which keeps ``truth/presence`` small.
    """

    scale: float = 0.03
    days: int = 7
    seed: int = 1
    market_share: float = 0.4
    start: date = date(2011, 3, 7)
    sites: int = 3500
    site_population_weight: float = 0.75
    working_ages: tuple[int, int] = (18, 64)
    work_attendance: float = 0.9
    work_hours: tuple[int, int] = (9, 17)
    night_hours: tuple[int, int] = (20, 7)
    other_in_home_area: float = 0.4
    other_distance_km: float = 10.0
    outing_probability: float = 0.5
    outing_hours: tuple[int, int] = (1, 4)
    event_rate_median: float = 8.0
    event_rate_floor: float = 4.0
    event_rate_sigma: float = 1.2
    weekend_activity: float = 0.85
    hourly_activity: tuple[float, ...] = field(default=DEFAULT_HOURLY_ACTIVITY)
    event_type_shares: tuple[float, ...] = field(default=DEFAULT_EVENT_TYPE_SHARES)
    presence_persons: int = 20_000

    def __post_init__(self) -> None:
        for name, ok, rule in self._rules():
            if not ok:
                value = getattr(self, name)
                raise CellcensusError(f"world parameter {name}={value!r} {rule}")

    def _rules(self) -> list[tuple[str, bool, str]]:
        """Each parameter's name, whether its value is allowed, and the rule it must follow."""
        share = "must be in [0, 1]"
        low, high = self.working_ages
        shortest, longest = self.outing_hours
        return [
            ("scale", 0 < self.scale <= 1, "must be in (0, 1]"),
            ("days", 1 <= self.days <= 366, "must be between 1 and 366"),
            ("seed", 0 <= self.seed < 2**63, "must be a non-negative integer"),
            ("market_share", 0 < self.market_share <= 1, "must be in (0, 1]"),
            ("start", isinstance(self.start, date), "must be a date"),
            ("sites", self.sites >= 589, "must be at least 589 (one per municipality)"),
            ("site_population_weight", 0 <= self.site_population_weight <= 1, share),
            (
                "working_ages",
                0 <= low <= high,
                "must be (youngest, oldest) with youngest <= oldest",
            ),
            ("work_attendance", 0 <= self.work_attendance <= 1, share),
            (
                "work_hours",
                _is_window(self.work_hours),
                "must be local hours (start, end), start < end",
            ),
            (
                "night_hours",
                _is_hours(self.night_hours),
                "must be two local hours 0-23 (start, end)",
            ),
            ("other_in_home_area", 0 <= self.other_in_home_area <= 1, share),
            ("other_distance_km", self.other_distance_km > 0, "must be positive"),
            ("outing_probability", 0 <= self.outing_probability <= 1, share),
            ("outing_hours", 1 <= shortest <= longest <= 24, "must be (shortest, longest) in 1-24"),
            (
                "event_rate_floor",
                0 < self.event_rate_floor < self.event_rate_median,
                "must be positive and below event_rate_median",
            ),
            ("event_rate_sigma", 0 < self.event_rate_sigma <= 3, "must be in (0, 3]"),
            ("weekend_activity", self.weekend_activity > 0, "must be positive"),
            (
                "hourly_activity",
                _is_profile(self.hourly_activity),
                "must be 24 non-negative weights, not all zero",
            ),
            (
                "event_type_shares",
                _is_shares(self.event_type_shares),
                f"must be non-negative shares of {EVENT_TYPES} summing to 1",
            ),
            ("presence_persons", self.presence_persons >= 0, "must be >= 0"),
        ]

    @property
    def end(self) -> date:
        """Last local calendar day of the period (inclusive)."""
        return date.fromordinal(self.start.toordinal() + self.days - 1)


def _is_window(hours: tuple[int, int]) -> bool:
    return len(hours) == 2 and 0 <= hours[0] < hours[1] <= 24


def _is_hours(hours: tuple[int, int]) -> bool:
    return len(hours) == 2 and all(0 <= hour <= 23 for hour in hours)


def _is_profile(weights: tuple[float, ...]) -> bool:
    return len(weights) == 24 and min(weights) >= 0 and sum(weights) > 0


def _is_shares(shares: tuple[float, ...]) -> bool:
    return (
        len(shares) == len(EVENT_TYPES)
        and min(shares) >= 0
        and math.isclose(sum(shares), 1.0, abs_tol=1e-9)
    )
