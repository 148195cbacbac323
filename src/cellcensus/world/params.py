"""Parameters of the synthetic country: what is sampled, how people move, how phones talk.

Every default is a published figure or a stated assumption; ``docs/world.md`` lists each with
its source (the keys of `evidence.SOURCES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from cellcensus.errors import CellcensusError
from cellcensus.world import evidence

EVENT_TYPES = ("call_out", "call_in", "sms_out", "sms_in", "data", "location_update")
"""Event types the devices emit, in the order of their codes (docs/schema.md's list)."""

SESSION_KINDS = ("call", "sms", "data")
"""Kinds of interactive sessions: a call (call_out/call_in), an SMS exchange, a data session."""

TECHNOLOGIES = ("2G", "3G", "4G")
"""Radio technologies, oldest first; every site has 2G."""


@dataclass(frozen=True, kw_only=True)
class FaultRates:
    """Share of a day's events given each defect of real exports (all zero: a clean export).

    Each name is the reason `cellcensus` ingestion quarantines such a row for, so that the
    injected counts in ``truth/faults.json`` can be checked against an ingest report.

    Attributes:
        duplicate: Exact copies of an event, appended to the day.
        unknown_cell: A cell identifier that is not in ``cells``.
        null_field: One required field (user, time, cell, type, MCC or MNC) left empty.
        outside_period: A timestamp moved outside the delivery's period.
        malformed_value: A TAC that is not 8 digits, an MCC out of range, or a time in 2250.
        unknown_event_type: An event type outside the contract's list.
    """

    duplicate: float = 0.0
    unknown_cell: float = 0.0
    null_field: float = 0.0
    outside_period: float = 0.0
    malformed_value: float = 0.0
    unknown_event_type: float = 0.0

    def __post_init__(self) -> None:
        for kind, rate in self.rates().items():
            if not 0 <= rate <= 0.1:
                raise CellcensusError(f"fault rate {kind}={rate!r} must be in [0, 0.1]")

    def rates(self) -> dict[str, float]:
        """Each fault kind and its rate, in a fixed order."""
        return {item.name: float(getattr(self, item.name)) for item in fields(self)}

    @property
    def any(self) -> bool:
        """Whether any fault is injected."""
        return any(rate > 0 for rate in self.rates().values())

    @classmethod
    def parse(cls, text: str) -> FaultRates:
        """Read ``RATE`` (every kind) or ``kind=RATE,kind=RATE`` (the others zero).

        Raises:
            CellcensusError: If the text names an unknown kind or a rate is not a number.
        """
        kinds = [item.name for item in fields(cls)]
        try:
            if "=" not in text:
                return cls(**dict.fromkeys(kinds, float(text)))
            pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
            values = {name.strip(): float(rate) for name, rate in pairs}
        except ValueError:
            raise CellcensusError(
                f"--faults {text!r} is not RATE or kind=RATE,...; kinds: {', '.join(kinds)}"
            ) from None
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise CellcensusError(
                f"--faults names unknown kinds {unknown}; use some of {', '.join(kinds)}"
            )
        return cls(**values)


class WorldParameterError(CellcensusError):
    """A world parameter out of its range: which one, its value and the rule it breaks."""

    def __init__(self, name: str, value: Any, rule: str) -> None:
        super().__init__(f"world parameter {name}={value!r} {rule}")
        self.name, self.value, self.rule = name, value, rule


OPTIONS = {"location_update_minutes": "--location-updates"}
"""The command-line options of `synth` and `demo` not named after their parameter."""


@dataclass(frozen=True, kw_only=True)
class WorldParams:
    """Everything that shapes a synthetic Belgium; the defaults are the documented model.

    Attributes:
        scale: Sampling fraction of the census 2011 population, in (0, 1]: each municipality
            gets ``round(population * scale)`` persons. Visitors and machines scale alike.
        days: Number of days of network events, 1-366.
        seed: Seed of every random draw; the same seed gives byte-identical files.
        start: First local calendar day (default Monday 7 March 2011, in the census year; it
            is the carnival school holiday; periods longer than 20 days cross the DST change).
        market_share: The holder's share of the phone owners of Belgium (its share of the
            market). ``metadata.json`` reports the realised share of all residents instead.
        regional_share_factors: (region code, factor): the holder's share in a region relative
            to the national one, rescaled so that the national share stays `market_share`.
        phone_ownership: (youngest age, share) steps: who owns a mobile phone, by age.
        secondary_sim_share: Share of adult phone owners with a second SIM (work phone,
            tablet or dongle), of any operator.
        secondary_data_only: Share of second SIMs that only carry data (tablets, dongles).
        secondary_activity: Activity of a second SIM relative to its owner's first.
        smartphone_share: Share of phones that are smartphones, which add background data.
        background_data_per_day: Background data events per day of a smartphone, at any hour.
        m2m_per_subscriber: The holder's machine-to-machine SIMs per resident subscriber.
        phone_off_per_year: How often a device is switched off (or lost) for days, per year.
        phone_off_days: Mean length of such a spell, in days.
        sites: Antenna sites of the holder, independent of `scale` (the network exists
            whatever the sample).
        site_population_weight: Share of the sites (beyond one per municipality) placed for
            capacity, where people live; the rest follow land area (coverage).
        technology_shares: (technology, share of sites carrying it); 2G is on every site.
        beam_width_deg: Horizontal half-power beam width of each of a site's three sectors.
        path_loss_exponent: Exponent of the distance in the path loss.
        shadowing_db: Standard deviation of the log-normal shadowing (dB).
        serving_softness_db: How strongly the best cell wins: a cell this many dB weaker
            serves e^-1 as often (overlap and ping-pong between neighbours).
        site_change_share: Share of sites added or removed during the period.
        working_ages: Youngest and oldest age at which a person can work (inclusive).
        work_attendance: Probability that a worker is at work on a working day.
        work_start_hours: Earliest and latest local hour a worker's day starts.
        work_duration_hours: Hours at the work place, breaks included.
        night_shift_share: Share of workers who work nights (22:00-06:00).
        school_ages: Ages that go to school or college on school days (if not working).
        school_hours: Local hours ``[start, end)`` at school.
        night_hours: Local hours ``[start, end)`` (wrapping midnight) that count as night,
            when nobody starts an outing; also the report's night.
        evening_outing_probability: Probability of an evening outing on a working day.
        weekend_outing_probability: Probability of a daytime outing on a free day.
        daytime_outing_probability: Probability of a daytime outing for a person who does
            not work or study, on a working day.
        outing_hours: Shortest and longest outing, in hours (inclusive).
        other_places: Regular other places of each person (shops, family, sport).
        other_in_home_area: Probability that such a place lies in the home municipality.
        other_distance_km: Scale of the exponential distance decay of other places.
        trip_probability: (working day, free day) probability that an outing is a trip to a
            farther municipality instead of a regular place.
        trip_distance_km: Scale of the exponential distance decay of trips.
        overnight_trips_per_year: Domestic overnight stays away from home per person a year.
        overnight_nights: Mean nights of a domestic stay.
        abroad_trips_per_year: Stays abroad per person a year (no events in Belgium).
        abroad_nights: Mean nights of a stay abroad.
        holiday_travel_factor: Multiplier of stays starting during school holidays.
        migration_rate_per_year: Share of persons who move to another municipality per year.
        migration_distance_km: Scale of the exponential distance decay of moves.
        roamer_arrivals_per_day: Foreign visitors arriving per day in the whole of Belgium
            (before `scale` and the holder's share).
        roamer_nights: Mean nights of a visitor who stays overnight.
        roamer_day_visit_share: Share of visitors who leave the day they come.
        roamer_activity: Activity of a roaming phone relative to a resident's.
        event_rate_median: Median interactive events (calls, SMS, data sessions) per device
            and day, before the age multiplier.
        event_rate_sigma: Log-scale spread of the per-device rate (the heavy tail).
        weekend_activity: Multiplier of the event rate on weekends and public holidays.
        hourly_activity: Relative activity per local hour 0-23 on working days.
        hourly_activity_weekend: The same on Saturdays, Sundays and public holidays.
        session_shares: Share of interactive sessions that are calls, SMS exchanges, data.
        session_events: Mean events per session of each kind (at least 1).
        session_gap_minutes: Mean minutes between the events of a session of each kind.
        location_update_minutes: Periodic location update interval in minutes; 0 = no
            signalling events (a CDR export).
        presence_persons: At most this many persons (a simple random sample) get hourly
            presence ground truth, which keeps ``truth/presence`` small.
        faults: Defects to inject into the events (none by default).
    """

    scale: float = 0.03
    days: int = 7
    seed: int = 1
    start: date = date(2011, 3, 7)
    market_share: float = 0.4
    regional_share_factors: tuple[tuple[str, float], ...] = evidence.REGIONAL_SHARE_FACTORS
    phone_ownership: tuple[tuple[int, float], ...] = evidence.PHONE_OWNERSHIP
    secondary_sim_share: float = 0.12
    secondary_data_only: float = 0.5
    secondary_activity: float = 0.35
    smartphone_share: float = 0.35
    background_data_per_day: float = 6.0
    m2m_per_subscriber: float = 0.06
    phone_off_per_year: float = 2.0
    phone_off_days: float = 3.0
    sites: int = 4000
    site_population_weight: float = 0.75
    technology_shares: tuple[tuple[str, float], ...] = (("2G", 1.0), ("3G", 0.8), ("4G", 0.0))
    beam_width_deg: float = 65.0
    path_loss_exponent: float = 3.5
    shadowing_db: float = 6.0
    serving_softness_db: float = 2.5
    site_change_share: float = 0.01
    working_ages: tuple[int, int] = (18, 64)
    work_attendance: float = 0.9
    work_start_hours: tuple[int, int] = (7, 9)
    work_duration_hours: int = 9
    night_shift_share: float = 0.05
    school_ages: tuple[int, int] = (3, 21)
    school_hours: tuple[int, int] = (8, 16)
    night_hours: tuple[int, int] = (22, 6)
    evening_outing_probability: float = 0.3
    weekend_outing_probability: float = 0.6
    daytime_outing_probability: float = 0.35
    outing_hours: tuple[int, int] = (1, 4)
    other_places: int = 3
    other_in_home_area: float = 0.5
    other_distance_km: float = 8.0
    trip_probability: tuple[float, float] = (0.04, 0.15)
    trip_distance_km: float = 35.0
    overnight_trips_per_year: float = 2.0
    overnight_nights: float = 2.0
    abroad_trips_per_year: float = 1.2
    abroad_nights: float = 6.0
    holiday_travel_factor: float = 2.5
    migration_rate_per_year: float = 0.047
    migration_distance_km: float = 15.0
    roamer_arrivals_per_day: float = 30_000.0
    roamer_nights: float = 2.2
    roamer_day_visit_share: float = 0.3
    roamer_activity: float = 0.6
    event_rate_median: float = 5.0
    event_rate_sigma: float = 1.1
    weekend_activity: float = 0.85
    hourly_activity: tuple[float, ...] = field(default=evidence.HOURLY_ACTIVITY_WEEKDAY)
    hourly_activity_weekend: tuple[float, ...] = field(default=evidence.HOURLY_ACTIVITY_WEEKEND)
    session_shares: tuple[float, float, float] = (0.35, 0.35, 0.3)
    session_events: tuple[float, float, float] = (1.4, 2.6, 3.0)
    session_gap_minutes: tuple[float, float, float] = (3.0, 1.5, 2.0)
    location_update_minutes: int = 0
    presence_persons: int = 20_000
    faults: FaultRates = field(default_factory=FaultRates)

    def __post_init__(self) -> None:
        for name, ok, rule in self._rules():
            if not ok:
                raise WorldParameterError(name, getattr(self, name), rule)

    @classmethod
    def from_options(cls, **values: Any) -> WorldParams:
        """The parameters a command's options give; a refusal names the option, not the field.

        Each value's option is its name in kebab case (``market_share``: ``--market-share``),
        but for those in `OPTIONS`.
        """
        try:
            return cls(**values)
        except WorldParameterError as error:
            if error.name not in values:
                raise
            option = OPTIONS.get(error.name, "--" + error.name.replace("_", "-"))
            raise CellcensusError(f"{option} {error.value}: {error.rule}") from None

    def _rules(self) -> list[tuple[str, bool, str]]:
        """Each parameter's name, whether its value is allowed, and the rule it must follow."""
        return [
            *self._sampling_rules(),
            *self._phone_rules(),
            *self._network_rules(),
            *self._mobility_rules(),
            *self._travel_rules(),
            *self._event_rules(),
        ]

    def _sampling_rules(self) -> list[tuple[str, bool, str]]:
        return [
            ("scale", 0 < self.scale <= 1, "must be in (0, 1]"),
            ("days", 1 <= self.days <= 366, "must be between 1 and 366"),
            ("seed", 0 <= self.seed < 2**63, "must be a non-negative integer"),
            ("start", isinstance(self.start, date), "must be a date"),
            ("presence_persons", self.presence_persons >= 0, "must be >= 0"),
            ("faults", isinstance(self.faults, FaultRates), "must be a FaultRates"),
        ]

    def _phone_rules(self) -> list[tuple[str, bool, str]]:
        return [
            ("market_share", 0 < self.market_share <= 1, "must be in (0, 1]"),
            (
                "regional_share_factors",
                all(
                    code in evidence.REGIONS and factor > 0
                    for code, factor in self.regional_share_factors
                ),
                f"must be (region code, positive factor) pairs, codes among {evidence.REGIONS}",
            ),
            (
                "phone_ownership",
                _is_steps(self.phone_ownership)
                and all(0 <= s <= 1 for _, s in self.phone_ownership),
                "must be (youngest age, share in [0, 1]) steps starting at age 0",
            ),
            ("secondary_sim_share", _is_share(self.secondary_sim_share), _SHARE),
            ("secondary_data_only", _is_share(self.secondary_data_only), _SHARE),
            ("secondary_activity", self.secondary_activity > 0, "must be positive"),
            ("smartphone_share", _is_share(self.smartphone_share), _SHARE),
            ("background_data_per_day", self.background_data_per_day >= 0, "must be >= 0"),
            ("m2m_per_subscriber", 0 <= self.m2m_per_subscriber <= 2, "must be in [0, 2]"),
            ("phone_off_per_year", 0 <= self.phone_off_per_year <= 50, "must be in [0, 50]"),
            ("phone_off_days", 1 <= self.phone_off_days <= 14, "must be in [1, 14]"),
        ]

    def _network_rules(self) -> list[tuple[str, bool, str]]:
        return [
            ("sites", 589 <= self.sites <= 100_000, "must be 589-100,000 (one per municipality)"),
            ("site_population_weight", _is_share(self.site_population_weight), _SHARE),
            (
                "technology_shares",
                _is_technologies(self.technology_shares),
                f"must give a share in [0, 1] to each of {TECHNOLOGIES}, with 2G at 1",
            ),
            ("beam_width_deg", 10 <= self.beam_width_deg <= 180, "must be in [10, 180]"),
            ("path_loss_exponent", 2 <= self.path_loss_exponent <= 6, "must be in [2, 6]"),
            ("shadowing_db", 0 <= self.shadowing_db <= 20, "must be in [0, 20]"),
            ("serving_softness_db", 0 < self.serving_softness_db <= 20, "must be in (0, 20]"),
            ("site_change_share", 0 <= self.site_change_share <= 0.1, "must be in [0, 0.1]"),
        ]

    def _mobility_rules(self) -> list[tuple[str, bool, str]]:
        return [
            (
                "working_ages",
                _is_range(self.working_ages, 0, math.inf),
                "must be (youngest, oldest), youngest <= oldest",
            ),
            ("work_attendance", _is_share(self.work_attendance), _SHARE),
            (
                "work_start_hours",
                _is_range(self.work_start_hours, 0, 23),
                "must be (earliest, latest) in 0-23",
            ),
            ("work_duration_hours", 1 <= self.work_duration_hours <= 14, "must be 1-14"),
            ("night_shift_share", _is_share(self.night_shift_share), _SHARE),
            (
                "school_ages",
                _is_range(self.school_ages, 0, math.inf),
                "must be (youngest, oldest), youngest <= oldest",
            ),
            ("school_hours", _is_window(self.school_hours), "must be (start, end), start < end"),
            ("night_hours", _is_hours(self.night_hours), "must be two local hours 0-23"),
            ("evening_outing_probability", _is_share(self.evening_outing_probability), _SHARE),
            ("weekend_outing_probability", _is_share(self.weekend_outing_probability), _SHARE),
            ("daytime_outing_probability", _is_share(self.daytime_outing_probability), _SHARE),
            (
                "outing_hours",
                _is_range(self.outing_hours, 1, 12),
                "must be (shortest, longest) in 1-12",
            ),
            ("other_places", 1 <= self.other_places <= 3, "must be 1-3"),
            ("other_in_home_area", _is_share(self.other_in_home_area), _SHARE),
            ("other_distance_km", self.other_distance_km > 0, "must be positive"),
            (
                "trip_probability",
                len(self.trip_probability) == 2 and all(map(_is_share, self.trip_probability)),
                "must be (working day, free day) probabilities in [0, 1]",
            ),
            ("trip_distance_km", self.trip_distance_km > 0, "must be positive"),
        ]

    def _travel_rules(self) -> list[tuple[str, bool, str]]:
        return [
            ("overnight_trips_per_year", 0 <= self.overnight_trips_per_year <= 50, "0-50"),
            ("overnight_nights", 1 <= self.overnight_nights <= 7, "must be in [1, 7]"),
            ("abroad_trips_per_year", 0 <= self.abroad_trips_per_year <= 20, "0-20"),
            ("abroad_nights", 1 <= self.abroad_nights <= 14, "must be in [1, 14]"),
            ("holiday_travel_factor", self.holiday_travel_factor > 0, "must be positive"),
            ("migration_rate_per_year", _is_share(self.migration_rate_per_year), _SHARE),
            ("migration_distance_km", self.migration_distance_km > 0, "must be positive"),
            ("roamer_arrivals_per_day", self.roamer_arrivals_per_day >= 0, "must be >= 0"),
            ("roamer_nights", 1 <= self.roamer_nights <= 7, "must be in [1, 7]"),
            ("roamer_day_visit_share", _is_share(self.roamer_day_visit_share), _SHARE),
            ("roamer_activity", self.roamer_activity > 0, "must be positive"),
        ]

    def _event_rules(self) -> list[tuple[str, bool, str]]:
        return [
            ("event_rate_median", self.event_rate_median > 0, "must be positive"),
            ("event_rate_sigma", 0 < self.event_rate_sigma <= 3, "must be in (0, 3]"),
            ("weekend_activity", self.weekend_activity > 0, "must be positive"),
            ("hourly_activity", _is_profile(self.hourly_activity), _PROFILE),
            ("hourly_activity_weekend", _is_profile(self.hourly_activity_weekend), _PROFILE),
            (
                "session_shares",
                _is_shares(self.session_shares, len(SESSION_KINDS)),
                f"must be non-negative shares of {SESSION_KINDS} summing to 1",
            ),
            (
                "session_events",
                len(self.session_events) == 3 and all(1 <= n <= 50 for n in self.session_events),
                "must be three means in [1, 50]",
            ),
            (
                "session_gap_minutes",
                len(self.session_gap_minutes) == 3
                and all(0 < g <= 60 for g in self.session_gap_minutes),
                "must be three means in (0, 60]",
            ),
            (
                "location_update_minutes",
                self.location_update_minutes == 0 or 6 <= self.location_update_minutes <= 1440,
                "must be 0 (off) or 6-1440",
            ),
        ]

    @property
    def end(self) -> date:
        """Last local calendar day of the period (inclusive)."""
        return date.fromordinal(self.start.toordinal() + self.days - 1)

    @classmethod
    def from_document(cls, parameters: dict[str, Any]) -> WorldParams:
        """The parameters a world was made with, from the ``parameters`` of its world.json."""
        values = {name: _tuples(value) for name, value in parameters.items()}
        values["start"] = date.fromisoformat(values["start"])
        values["faults"] = FaultRates(**values["faults"])
        return cls(**values)


def _tuples(value: Any) -> Any:
    """JSON lists as the tuples the parameters hold."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


_SHARE = "must be in [0, 1]"
_PROFILE = "must be 24 non-negative weights, not all zero"


def _is_share(value: float) -> bool:
    return 0 <= value <= 1


def _is_range(pair: tuple[int, ...], lowest: float, highest: float) -> bool:
    """Two values, in order, within [lowest, highest]."""
    return len(pair) == 2 and lowest <= pair[0] <= pair[1] <= highest


def _is_window(hours: tuple[int, int]) -> bool:
    return len(hours) == 2 and 0 <= hours[0] < hours[1] <= 24


def _is_hours(hours: tuple[int, int]) -> bool:
    return len(hours) == 2 and all(0 <= hour <= 23 for hour in hours)


def _is_profile(weights: tuple[float, ...]) -> bool:
    return len(weights) == 24 and min(weights) >= 0 and sum(weights) > 0


def _is_steps(steps: tuple[tuple[int, float], ...]) -> bool:
    ages = [age for age, _ in steps]
    return bool(ages) and ages[0] == 0 and ages == sorted(set(ages))


def _is_technologies(shares: tuple[tuple[str, float], ...]) -> bool:
    named = dict(shares)
    return (
        sorted(named) == sorted(TECHNOLOGIES)
        and named["2G"] == 1.0
        and all(0 <= share <= 1 for share in named.values())
    )


def _is_shares(shares: tuple[float, ...], count: int) -> bool:
    return len(shares) == count and min(shares) >= 0 and math.isclose(sum(shares), 1.0)
