"""Published figures the synthetic country is built on, each with its source.

The keys of `SOURCES` are cited beside every constant and every parameter default (in
`params.py` and in ``docs/world.md``); values that no source pins down are marked as
assumptions there, with the reasoning that bounds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SOURCES: dict[str, str] = {
    "statbel-census-2011": "Statbel, Census 2011: population by municipality, sex and 5-year age "
    "band; commuting between arrondissements (shipped in cellcensus.reference).",
    "sudinfo-2013": "Sudinfo, '13 millions de GSM, 11 millions de Belges' (25 April 2013): "
    "Mobistar 4.32 M and BASE 3.4 M customers at end 2012, about 13 M SIM cards in use.",
    "infoduweb-2006": "La DH / infoduweb, 'Base rogne sur Proximus' (2006): penetration above "
    "100%, millions of Belgians with two SIM cards, often of two operators.",
    "towerxchange-2023": "TowerXchange, 'Belgium's telecommunications and towerco market "
    "overview' (2023): Proximus about 40% market share.",
    "datanews-2011": "Datanews (Le Vif), 'Une antenne dans mon jardin, non merci!': almost "
    "7,000 antenna sites in Belgium; Mobistar 4,611 own masts.",
    "bemobile-2005": "Bemobile.be (7 April 2005): BASE network of 2,142 2.5G sites.",
    "bemobile-2016": "Bemobile.be, 'Proximus devient leader des communications entre "
    "machines' (17 May 2016): Proximus about 300,000 active M2M SIMs in early 2015, Orange "
    "737,000.",
    "bemobile-2012": "Bemobile.be (23 October 2012): 19-23% of BASE's SIM cards inactive.",
    "brf-2014": "BRF, 'Belgier scheuen das mobile Internet' (2014): only 45% of Belgian mobile "
    "customers have a contract with mobile data.",
    "eurobarometer-2007": "Eurobarometer qualitative study on children's use of mobile phones "
    "(2007): three quarters of 9-10 year olds and nine in ten 12-14 year olds own one.",
    "ncgm-2013": "Mascheroni & Olafsson, Net Children Go Mobile (2013/2014): European children "
    "get their first mobile phone at about 9.",
    "synovate-doro-2010": "Synovate for Doro (February 2010): nearly 90% of 65-74 year olds own "
    "a mobile phone, two thirds of those over 75.",
    "bitkom-2011": "Bitkom / Forsa (15 September 2011): 72% of Germans over 65 own a mobile "
    "phone; 87% of all ages.",
    "lecho-2006": "L'Echo / Statbel (2006): more than 500,000 moves between municipalities "
    "a year, close to 5% of the population.",
    "tourism-belgium": "Tourism in Belgium (Statbel / Toerisme Vlaanderen arrivals, via "
    "everything.explained.today): 6.7 M visitors in 2005, two thirds from France, the "
    "Netherlands, the United Kingdom and Germany; 2014 arrivals NL 1.71 M, FR 1.26 M, "
    "UK 1.03 M, DE 0.87 M; tourism concentrated on the coast, in the Ardennes, Brussels "
    "and the art cities (Bruges, Ghent, Antwerp, Leuven).",
    "tourismprof-2016": "tourismprof.club, 'Belgium tourism statistics': 7.5-8.35 M "
    "international arrivals in accommodation a year (2015-2016), 58% for business.",
    "vrt-2013": "VRT News (7 December 2013): almost 6 M overnight stays in Brussels in 2012, "
    "80% by foreigners.",
    "belgian-holidays": "Belgian legal public holidays (Royal Decree of 18 April 1974): 1 Jan, "
    "Easter Monday, 1 May, Ascension, Whit Monday, 21 Jul, 15 Aug, 1 Nov, 11 Nov, 25 Dec.",
    "belgian-school-calendar": "School calendars of the Flemish and French Communities, "
    "school years 2010-11 and 2011-12 (identical dates then).",
    "pre-fusion-1977": "Belgium had 2,359 municipalities before the mergers of 1977 (589 "
    "after): one former village centre per 13 km2 on average.",
    "geonames-places": "GeoNames, populated places of 500 inhabitants or more (cities500, CC "
    "BY 4.0): Belgium's 2,256 towns and villages with their positions and populations "
    "(shipped in cellcensus.reference).",
    "3gpp-36814": "3GPP TR 36.814, Table A.2.1.1-2: horizontal antenna pattern "
    "-min(12 (theta/theta_3dB)^2, 20) dB, theta_3dB = 65 degrees, three sectors per site.",
    "gonzalez-2008": "Gonzalez, Hidalgo & Barabasi, 'Understanding individual human mobility "
    "patterns', Nature 453 (2008): heavy-tailed activity; most time at two places.",
    "candia-2008": "Candia et al., 'Uncovering individual and collective human dynamics from "
    "mobile phone records', J. Phys. A 41 (2008): bursty, session-like activity; daily and "
    "weekly rhythms.",
    "seshadri-2008": "Seshadri et al., 'Mobile call graphs: beyond power-law and lognormal "
    "distributions', KDD 2008: calls per customer skewed, close to lognormal.",
    "lfs-night-work": "Eurostat Labour Force Survey (lfsa_ewpnig): about 5-6% of Belgian "
    "employees usually work at night.",
    "3gpp-24008": "3GPP TS 24.008: periodic location updating timer T3212, set by the "
    "operator in deci-hours (typically 1-6 hours).",
    "assumption": "No published figure found: a stated assumption, bounded in docs/world.md.",
}
"""Citation of every source key used in the world's defaults."""

BELGIUM_MCC = 206
"""Mobile country code of Belgium (ITU-T E.212)."""


@dataclass(frozen=True)
class Operator:
    """One of the three Belgian mobile network operators of the model.

    Attributes:
        name: Operator name in the outputs.
        mnc: Mobile network code.
        user_prefix: Leading digits of the operator's subscriber numbers.
    """

    name: str
    mnc: int
    user_prefix: str


HOLDER = Operator(name="synthetic-operator", mnc=1, user_prefix="3247")
"""The data holder: its events are what the world writes."""
COMPETITORS = (
    Operator(name="competitor-a", mnc=10, user_prefix="3249"),
    Operator(name="competitor-b", mnc=20, user_prefix="3248"),
)
"""The other two operators: their subscribers exist but their events are not written."""
M2M_PREFIX = "3277"
"""Numbers of the holder's M2M SIMs: the Belgian 077 range is reserved for M2M."""

# fmt: off
PHONE_OWNERSHIP: tuple[tuple[int, float], ...] = (
    (0, 0.0), (6, 0.05), (8, 0.45), (10, 0.75), (12, 0.9), (15, 0.95), (18, 0.97),
    (25, 0.96), (55, 0.92), (65, 0.86), (75, 0.66), (85, 0.4),
)
"""(youngest age, share owning a mobile phone): eurobarometer-2007, ncgm-2013,
synovate-doro-2010, bitkom-2011."""

AGE_ACTIVITY: tuple[tuple[int, float], ...] = (
    (0, 1.0), (12, 1.5), (18, 1.3), (30, 1.0), (50, 0.8), (65, 0.55), (75, 0.4),
)
"""(youngest age, multiplier of the interactive event rate): teenagers text most, the oldest
call least (assumption consistent with seshadri-2008's skew and candia-2008)."""

REGIONS = ("2000", "3000", "4000")
"""Statbel codes of the Flemish, Walloon and Brussels-Capital regions."""

REGIONAL_SHARE_FACTORS: tuple[tuple[str, float], ...] = (
    ("2000", 1.06), ("3000", 0.95), ("4000", 0.82),
)
"""(region code, holder share relative to national): stronger in Flanders, weaker in
Brussels where the low-cost third operator was strongest (assumption)."""

HOURLY_ACTIVITY_WEEKDAY: tuple[float, ...] = (
    1.2, 0.6, 0.35, 0.25, 0.25, 0.5, 1.4,
    3.2, 4.6, 5.0, 5.2, 5.4, 5.6, 5.4, 5.2, 5.2, 5.4, 5.9, 6.1, 6.0,
    5.6, 5.0, 4.0, 2.6,
)
"""Relative activity per local hour on working days (candia-2008: night trough around 4h,
plateau by day, peak in the early evening)."""

HOURLY_ACTIVITY_WEEKEND: tuple[float, ...] = (
    2.0, 1.3, 0.8, 0.5, 0.35, 0.35, 0.6,
    1.2, 2.4, 3.8, 4.8, 5.3, 5.5, 5.4, 5.3, 5.3, 5.4, 5.6, 5.8, 5.8,
    5.6, 5.2, 4.3, 3.0,
)
"""Relative activity per local hour on Saturdays, Sundays and holidays: later mornings,
busier late evenings (candia-2008)."""
# fmt: on


@dataclass(frozen=True)
class RoamingOrigin:
    """A country inbound roamers come from.

    Attributes:
        country: ISO 3166 alpha-2 code.
        mcc: Mobile country code.
        mncs: Network codes of its main operators.
        calling_code: International calling code plus the first digit of mobile numbers.
        digits: Digits after `calling_code` in a mobile number.
        share: Share of inbound visitors.
    """

    country: str
    mcc: int
    mncs: tuple[int, ...]
    calling_code: str
    digits: int
    share: float


ROAMING_ORIGINS: tuple[RoamingOrigin, ...] = (
    RoamingOrigin("NL", 204, (4, 8, 16), "316", 8, 0.25),
    RoamingOrigin("FR", 208, (1, 10, 20), "336", 8, 0.19),
    RoamingOrigin("GB", 234, (10, 15, 30, 33), "447", 9, 0.14),
    RoamingOrigin("DE", 262, (1, 2, 3, 7), "491", 9, 0.13),
    RoamingOrigin("LU", 270, (1, 77, 99), "3526", 8, 0.03),
    RoamingOrigin("US", 310, (260, 410), "1", 10, 0.05),
    RoamingOrigin("ES", 214, (1, 3, 7), "346", 8, 0.05),
    RoamingOrigin("IT", 222, (1, 10, 88), "393", 9, 0.05),
    RoamingOrigin("PL", 260, (1, 2, 3), "485", 8, 0.04),
    RoamingOrigin("CN", 460, (0, 1), "861", 10, 0.02),
    RoamingOrigin("JP", 440, (10, 20), "8190", 8, 0.02),
    RoamingOrigin("CH", 228, (1, 2), "417", 8, 0.03),
)
"""Where inbound roamers come from: the 2014 arrivals (tourism-belgium), neighbours first.
Shares sum to 1."""


@dataclass(frozen=True)
class Destination:
    """A group of municipalities that attracts visitors.

    Attributes:
        name: What the group is.
        prefixes: NIS code prefixes of its municipalities (a full code selects one).
        share: Share of visitor stays that go there.
    """

    name: str
    prefixes: tuple[str, ...]
    share: float


TOURIST_DESTINATIONS: tuple[Destination, ...] = (
    Destination("Brussels city", ("21004",), 0.18),
    Destination("Brussels region", ("21",), 0.15),
    Destination("Bruges", ("31005",), 0.09),
    Destination(
        "the coast",
        ("38008", "38014", "38016", "35011", "35013", "35002", "35029", "31004", "31043"),
        0.13,
    ),
    Destination("the Ardennes", ("8", "91", "63072", "63073", "63049", "63075"), 0.12),
    Destination("Antwerp", ("11002",), 0.08),
    Destination("Ghent", ("44021",), 0.05),
    Destination("Leuven", ("24062",), 0.02),
    Destination("Liege", ("62063",), 0.02),
)
"""Where visitors stay (tourism-belgium, vrt-2013); the remaining 16% go anywhere, in
proportion to population (business and family visits)."""


@dataclass(frozen=True)
class MachineProfile:
    """A kind of machine-to-machine SIM and how it talks.

    Attributes:
        kind: What the machine is.
        share: Share of the holder's M2M SIMs.
        period_minutes: Reporting period.
        moving: Whether it moves along roads (vehicles) or stays put.
        where: Where a static one stands: ``home``, ``business``.
        sms_share: Share of its reports sent as SMS (the rest are data).
    """

    kind: str
    share: float
    period_minutes: int
    moving: bool
    where: str
    sms_share: float


MACHINE_PROFILES: tuple[MachineProfile, ...] = (
    MachineProfile("smart meter", 0.35, 60, moving=False, where="home", sms_share=0.0),
    MachineProfile("alarm", 0.25, 240, moving=False, where="home", sms_share=0.2),
    MachineProfile("payment terminal", 0.15, 30, moving=False, where="business", sms_share=0.0),
    MachineProfile("vehicle tracker", 0.25, 15, moving=True, where="business", sms_share=0.0),
)
"""The M2M mix (bemobile-2016 names meters, track & trace, payment and security as the big
M2M uses; the shares are an assumption)."""

M2M_JITTER_SECONDS = 20.0
"""Standard deviation of a machine's report time around its schedule (assumption)."""

# School holidays of both Communities; the default period (7-13 March 2011) is the carnival
# week ("krokusvakantie"), when pupils stay home.
SCHOOL_HOLIDAYS: tuple[tuple[date, date], ...] = (
    (date(2010, 7, 1), date(2010, 8, 31)),
    (date(2010, 11, 1), date(2010, 11, 7)),
    (date(2010, 12, 27), date(2011, 1, 9)),
    (date(2011, 3, 7), date(2011, 3, 13)),
    (date(2011, 4, 11), date(2011, 4, 25)),
    (date(2011, 7, 1), date(2011, 8, 31)),
    (date(2011, 10, 31), date(2011, 11, 6)),
    (date(2011, 12, 26), date(2012, 1, 8)),
    (date(2012, 2, 20), date(2012, 2, 26)),
    (date(2012, 4, 2), date(2012, 4, 15)),
    (date(2012, 7, 1), date(2012, 8, 31)),
)
"""(first, last) day of each school holiday, 2010-2012 (belgian-school-calendar). Outside
these years only July and August and the Christmas fortnight are holidays."""

TECHNOLOGY_REQUESTS: tuple[tuple[float, float, float], ...] = (
    (0.55, 0.45, 0.0),
    (0.55, 0.45, 0.0),
    (0.6, 0.4, 0.0),
    (0.6, 0.4, 0.0),
    (0.15, 0.35, 0.5),
    (0.5, 0.5, 0.0),
)
"""Per event type (params.EVENT_TYPES order), the technology a device asks for (2G, 3G, 4G);
a site without it serves on the best older one. Voice and SMS were on 2G/3G in 2011, data
prefers the newest (assumption)."""
