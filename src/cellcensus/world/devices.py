"""The holder's devices: residents' phones and second SIMs, machines, and visitors' phones."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.evidence import (
    AGE_ACTIVITY,
    BELGIUM_MCC,
    HOLDER,
    M2M_PREFIX,
)
from cellcensus.world.handsets import Catalogue, DeviceType
from cellcensus.world.identifiers import numbered
from cellcensus.world.params import WorldParams
from cellcensus.world.population import Residents
from cellcensus.world.roaming import RoamerStays
from cellcensus.world.subscription import Subscriptions, step_values

NO_INDEX = -1


class DeviceKind(IntEnum):
    """What a device is (the ``kind`` of ``truth/devices``)."""

    PRIMARY = 0
    SECONDARY = 1
    M2M = 2
    ROAMER = 3


DEVICE_KIND_NAMES = ("primary", "secondary", "m2m", "roamer")
VISITOR_SMARTPHONES = 0.5
"""Share of visitors' phones that are smartphones (assumption)."""


@dataclass(frozen=True)
class Devices:
    """Every device of the holder's network, residents' first, then machines, then visitors.

    Attributes:
        kind: `DeviceKind` of each device.
        agent: Row of the device's carrier in `Agents`, or `NO_INDEX` for a machine.
        person: The owning person, or `NO_INDEX` for machines and visitors.
        machine: Index of the machine, or `NO_INDEX`.
        user_id: Subscriber number, unique.
        model: Index of the device model in the catalogue.
        mcc: Home network's country code.
        mnc: Home network's code.
        rate: Mean interactive events per day (before the day's rhythm).
        background: Whether the device makes background data events (smartphone, tablet).
        data_only: Whether the device only makes data events (tablet, dongle).
    """

    kind: NDArray[np.int8]
    agent: NDArray[np.int32]
    person: NDArray[np.intp]
    machine: NDArray[np.int32]
    user_id: NDArray[np.str_]
    model: NDArray[np.int32]
    mcc: NDArray[np.int32]
    mnc: NDArray[np.int32]
    rate: NDArray[np.float64]
    background: NDArray[np.bool_]
    data_only: NDArray[np.bool_]

    @property
    def size(self) -> int:
        """Number of devices."""
        return int(self.kind.size)

    def of_kind(self, kind: DeviceKind) -> NDArray[np.intp]:
        """Indices of the devices of a kind."""
        return np.flatnonzero(self.kind == kind)


def build_devices(
    *,
    residents: Residents,
    subscriptions: Subscriptions,
    tracked: NDArray[np.intp],
    machines: int,
    stays: RoamerStays,
    catalogue: Catalogue,
    params: WorldParams,
    rng: np.random.Generator,
) -> Devices:
    """Give the holder's subscribers, machines and visitors their devices.

    Args:
        residents: The persons.
        subscriptions: Their operators.
        tracked: Persons simulated day by day (agent rows, sorted).
        machines: Number of M2M SIMs.
        stays: The visitors (agent rows after the tracked persons).
        catalogue: The device models.
        params: The world's parameters.
        rng: The random generator.

    Returns:
        The devices.
    """
    primary = subscriptions.holder_primary
    secondary = subscriptions.holder_secondary
    person = np.concatenate([primary, secondary])
    kind = np.concatenate(
        [np.full(primary.size, DeviceKind.PRIMARY), np.full(secondary.size, DeviceKind.SECONDARY)]
    )
    order = np.lexsort((kind, person))
    person, kind = person[order], kind[order]
    residents_part = _resident_devices(
        residents=residents,
        person=person,
        kind=kind,
        tracked=tracked,
        catalogue=catalogue,
        params=params,
        rng=rng,
    )
    machines_part = _machine_devices(count=machines, catalogue=catalogue, rng=rng)
    visitors_part = _visitor_devices(
        stays=stays, first_agent=tracked.size, catalogue=catalogue, params=params, rng=rng
    )
    parts = [residents_part, machines_part, visitors_part]
    numbers = _unique_numbers(count=residents_part.size + machines, digits=8, rng=rng)
    user_id = np.concatenate(
        [
            numbered(HOLDER.user_prefix, numbers[: residents_part.size], 8),
            numbered(M2M_PREFIX, numbers[residents_part.size :], 8),
            stays.user_id,
        ]
    )
    return Devices(
        kind=np.concatenate([p.kind for p in parts]),
        agent=np.concatenate([p.agent for p in parts]),
        person=np.concatenate([p.person for p in parts]),
        machine=np.concatenate([p.machine for p in parts]),
        user_id=user_id,
        model=np.concatenate([p.model for p in parts]),
        mcc=np.concatenate([p.mcc for p in parts]),
        mnc=np.concatenate([p.mnc for p in parts]),
        rate=np.concatenate([p.rate for p in parts]),
        background=np.concatenate([p.background for p in parts]),
        data_only=np.concatenate([p.data_only for p in parts]),
    )


def _part(
    *,
    kind: NDArray[np.int64] | int,
    count: int,
    agent: NDArray[np.int64] | int = NO_INDEX,
    person: NDArray[np.intp] | int = NO_INDEX,
    machine: NDArray[np.int64] | int = NO_INDEX,
    model: NDArray[np.int32],
    mcc: NDArray[np.int32] | int = BELGIUM_MCC,
    mnc: NDArray[np.int32] | int = HOLDER.mnc,
    rate: NDArray[np.float64] | float = 0.0,
    background: NDArray[np.bool_] | bool = False,
    data_only: NDArray[np.bool_] | bool = False,
) -> Devices:
    def full(value: object, dtype: type) -> NDArray[Any]:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (count,)).copy()

    return Devices(
        kind=full(kind, np.int8),
        agent=full(agent, np.int32),
        person=full(person, np.intp),
        machine=full(machine, np.int32),
        user_id=np.empty(0, dtype=str),
        model=full(model, np.int32),
        mcc=full(mcc, np.int32),
        mnc=full(mnc, np.int32),
        rate=full(rate, np.float64),
        background=full(background, np.bool_),
        data_only=full(data_only, np.bool_),
    )


def interactive_rates(
    *, count: int, params: WorldParams, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Per-device mean interactive events per day: lognormal, the heavy tail.

    The median is `event_rate_median` and the log-scale spread `event_rate_sigma` (a few
    devices make most events: seshadri-2008).
    """
    rates: NDArray[np.float64] = rng.lognormal(
        mean=np.log(params.event_rate_median), sigma=params.event_rate_sigma, size=count
    )
    return rates


def _resident_devices(
    *,
    residents: Residents,
    person: NDArray[np.intp],
    kind: NDArray[np.int64],
    tracked: NDArray[np.intp],
    catalogue: Catalogue,
    params: WorldParams,
    rng: np.random.Generator,
) -> Devices:
    count = person.size
    second = kind == DeviceKind.SECONDARY
    smartphone = rng.random(count) < params.smartphone_share
    data_only = second & (rng.random(count) < params.secondary_data_only)
    rate = interactive_rates(count=count, params=params, rng=rng)
    rate *= step_values(AGE_ACTIVITY, residents.age[person])
    rate *= np.where(second, params.secondary_activity, 1.0)
    model = np.where(
        data_only,
        catalogue.draw(device_type=DeviceType.TABLET, count=count, rng=rng),
        np.where(
            smartphone,
            catalogue.draw(device_type=DeviceType.SMARTPHONE, count=count, rng=rng),
            catalogue.draw(device_type=DeviceType.FEATURE_PHONE, count=count, rng=rng),
        ),
    ).astype(np.int32)
    return _part(
        kind=kind,
        count=count,
        agent=np.searchsorted(tracked, person),
        person=person,
        model=model,
        rate=rate,
        background=smartphone | data_only,
        data_only=data_only,
    )


def _machine_devices(*, count: int, catalogue: Catalogue, rng: np.random.Generator) -> Devices:
    return _part(
        kind=DeviceKind.M2M,
        count=count,
        machine=np.arange(count),
        model=catalogue.draw(device_type=DeviceType.MODULE, count=count, rng=rng),
    )


def _visitor_devices(
    *,
    stays: RoamerStays,
    first_agent: int,
    catalogue: Catalogue,
    params: WorldParams,
    rng: np.random.Generator,
) -> Devices:
    count = stays.size
    smartphone = rng.random(count) < VISITOR_SMARTPHONES
    model = np.where(
        smartphone,
        catalogue.draw(device_type=DeviceType.SMARTPHONE, count=count, rng=rng),
        catalogue.draw(device_type=DeviceType.FEATURE_PHONE, count=count, rng=rng),
    ).astype(np.int32)
    rate = interactive_rates(count=count, params=params, rng=rng) * params.roamer_activity
    return _part(
        kind=DeviceKind.ROAMER,
        count=count,
        agent=first_agent + np.arange(count),
        model=model,
        mcc=stays.mcc,
        mnc=stays.mnc,
        rate=rate,
        background=smartphone,
    )


def _unique_numbers(*, count: int, digits: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """`count` distinct random numbers below 10**digits, in random order.

    Duplicates are redrawn, which avoids a permutation of the whole range (gigabytes).
    """
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < count:
        draws = rng.integers(0, 10**digits, size=count - chosen.size + 16, dtype=np.int64)
        pool = np.concatenate([chosen, draws])
        _, first = np.unique(pool, return_index=True)
        chosen = pool[np.sort(first)]
    return chosen[:count]
