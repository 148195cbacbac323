"""The holder's rounding secret: made whole on first use, refused when it could be guessed."""

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.enclave.compute import ROUNDING_KEY_BYTES, rounding_secret


def test_a_new_store_gets_a_private_random_key_kept_from_then_on(tmp_path: Path) -> None:
    secret = rounding_secret(tmp_path)
    key = tmp_path / "enclave" / "rounding.key"
    assert len(secret) == 2 * ROUNDING_KEY_BYTES and int(secret, 16) > 0  # hex of 32 bytes
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert rounding_secret(tmp_path) == secret
    assert rounding_secret(tmp_path / "other") != secret
    assert sorted(path.name for path in key.parent.iterdir()) == ["rounding.key"]  # no aside


@pytest.mark.parametrize("content", ["", "\n", "0123456789abcdef"])
def test_a_key_too_short_to_be_secret_is_refused_until_removed(tmp_path: Path, content) -> None:
    # An empty key would round each cell on a grid anyone can compute.
    key = tmp_path / "enclave" / "rounding.key"
    key.parent.mkdir()
    key.write_text(content)
    key.chmod(0o600)
    with pytest.raises(CellcensusError, match=r"too few to be secret .*remove it"):
        rounding_secret(tmp_path)
    key.unlink()
    assert len(rounding_secret(tmp_path)) == 2 * ROUNDING_KEY_BYTES


def test_threads_making_the_key_at_once_all_get_the_same_whole_key(tmp_path: Path) -> None:
    # The service's threads may release together on a new store: no aside is shared.
    start = threading.Barrier(8)

    def made() -> bytes:
        start.wait()
        return rounding_secret(tmp_path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = set(pool.map(lambda _: made(), range(8)))
    (secret,) = secrets
    assert len(secret) == 2 * ROUNDING_KEY_BYTES
    assert [path.name for path in (tmp_path / "enclave").iterdir()] == ["rounding.key"]
