"""The NSO's view of the enclave: submit a job, receive a release. Nothing else crosses."""

from __future__ import annotations

from typing import Any, Protocol

from cellcensus.release import Release


class Runner(Protocol):
    """Anything that runs a catalogue algorithm for an analyst and returns its release."""

    def __call__(self, *, algorithm: str, parameters: dict[str, Any], analyst: str) -> Release:
        """Run one job."""
        ...


class InProcessClient:
    """The embedded default: the enclave runs in this process, behind the same interface.

    Holds only a callable that returns releases, so NSO code never touches the holder's store.
    """

    def __init__(self, *, runner: Runner, analyst: str) -> None:
        self._runner = runner
        self.analyst = analyst

    def run(self, *, algorithm: str, parameters: dict[str, Any] | None = None) -> Release:
        """Run `algorithm` in the enclave and return what it released."""
        return self._runner(algorithm=algorithm, parameters=parameters or {}, analyst=self.analyst)
