"""The catalogue of device models (TACs): phones, tablets and M2M modules.

A type allocation code (the first 8 digits of an IMEI) names a device model; the GSMA TAC
database tells an operator which TACs are machine-to-machine modules. The synthetic catalogue
has that database's device types, and its popularity follows a Zipf law, like a real market.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from cellcensus.world.identifiers import numbered


class DeviceType(IntEnum):
    """A model's device type, as the GSMA TAC database classifies them."""

    FEATURE_PHONE = 0
    SMARTPHONE = 1
    TABLET = 2
    MODULE = 3


DEVICE_TYPE_NAMES = ("feature phone", "smartphone", "tablet", "module")
"""Names of `DeviceType` values in the outputs."""
MODELS = {
    DeviceType.FEATURE_PHONE: 40,
    DeviceType.SMARTPHONE: 30,
    DeviceType.TABLET: 10,
    DeviceType.MODULE: 12,
}
"""Models of each device type in the catalogue."""
REPORTING_BODIES = {
    DeviceType.FEATURE_PHONE: "35",
    DeviceType.SMARTPHONE: "35",
    DeviceType.TABLET: "35",
    DeviceType.MODULE: "86",
}
"""First two TAC digits (the reporting body: 35 BABT, 86 TAF China) of each device type."""


@dataclass(frozen=True)
class Catalogue:
    """Device models.

    Attributes:
        tac: 8-digit TAC of each model, unique.
        device_type: `DeviceType` of each model.
    """

    tac: NDArray[np.str_]
    device_type: NDArray[np.int8]

    def draw(
        self, *, device_type: DeviceType, count: int, rng: np.random.Generator
    ) -> NDArray[np.int32]:
        """Models of `count` devices of a type, popular models more often (Zipf)."""
        models = np.flatnonzero(self.device_type == device_type)
        popularity = 1.0 / np.arange(1, models.size + 1)
        chosen = rng.choice(models.size, size=count, p=popularity / popularity.sum())
        drawn: NDArray[np.int32] = models[chosen].astype(np.int32)
        return drawn


def build_catalogue(rng: np.random.Generator) -> Catalogue:
    """A catalogue with `MODELS` models of each type and distinct random TACs."""
    tacs: list[NDArray[np.str_]] = []
    types: list[NDArray[np.int8]] = []
    taken: set[str] = set()
    for device_type, count in MODELS.items():
        chosen: list[str] = []
        while len(chosen) < count:
            number = numbered(REPORTING_BODIES[device_type], rng.integers(0, 10**6, size=1), 6)
            if str(number[0]) not in taken:
                taken.add(str(number[0]))
                chosen.append(str(number[0]))
        tacs.append(np.array(chosen))
        types.append(np.full(count, int(device_type), dtype=np.int8))
    return Catalogue(tac=np.concatenate(tacs), device_type=np.concatenate(types))
