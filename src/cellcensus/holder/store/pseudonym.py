"""Keyed pseudonyms: subscriber identifiers become device ids before anything is written.

A pseudonym is HMAC-SHA256(key, user_id as UTF-8) truncated to its first 8 bytes, read as a
big-endian signed int64, so the algorithms group by a machine integer instead of a string.
Truncation keeps 64 bits: by the birthday bound the chance that any two of n subscribers share a
pseudonym is about n^2 / 2^65, i.e. 3e-6 for 10 million subscribers and 3e-4 for 100 million,
and a collision would merge two devices' events in one day's counts, far below the noise the
disclosure layer adds. Without the key, a pseudonym cannot be linked back to a number by
hashing candidate numbers, which is why the key never leaves the holder's machine and is never
printed or logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cellcensus.errors import CellcensusError

KEY_BYTES = 32
"""Length of the secret key: 256 bits, as long as a SHA-256 output."""

KEY_FILE_ENV = "CELLCENSUS_KEY_FILE"
"""Environment variable naming the key file; it overrides `default_key_file`'s home default."""


def default_key_file() -> Path:
    """The key file to use when none is given.

    Returns:
        ``$CELLCENSUS_KEY_FILE`` if set, else ``~/.config/cellcensus/pseudonym.key``.
    """
    configured = os.environ.get(KEY_FILE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".config" / "cellcensus" / "pseudonym.key"


def load_or_create_key(*, key_file: Path) -> bytes:
    """Read the holder's secret key, creating it on first use.

    A new key is 32 random bytes from the operating system, written with mode 0600; folders
    created on the way get mode 0700. Creation is atomic (written aside, then hard-linked into
    place), so two ingests starting together end up with the same key.

    Args:
        key_file: Where the key lives.

    Returns:
        The 32-byte key.

    Raises:
        CellcensusError: If the file is not a 32-byte key or other users may read it.
    """
    key_file = key_file.expanduser()
    if not key_file.exists():
        create_key(key_file=key_file)
    return read_key(key_file=key_file)


def read_key(*, key_file: Path) -> bytes:
    """Read an existing key file, refusing one that others may read or of the wrong size.

    Args:
        key_file: Where the key lives.

    Returns:
        The 32-byte key.

    Raises:
        CellcensusError: If the file is unreadable, not a 32-byte key or open to other users.
    """
    try:
        mode = key_file.stat().st_mode
        key = key_file.read_bytes()
    except OSError as error:
        raise CellcensusError(
            f"cannot read the pseudonymisation key file {key_file} ({error.strerror}); "
            "check its permissions"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CellcensusError(
            f"the pseudonymisation key file {key_file} is accessible to other users "
            f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {key_file}`"
        )
    if len(key) != KEY_BYTES:
        raise CellcensusError(
            f"the pseudonymisation key file {key_file} holds {len(key)} bytes, not a "
            f"{KEY_BYTES}-byte key; restore it from its backup (another key gives other "
            "pseudonyms) or point --key-file at a new path to start a new key"
        )
    return key


def create_key(*, key_file: Path, secret: bytes | None = None) -> None:
    """Write a new key to `key_file` (mode 0600), unless another process got there first.

    Written aside and hard-linked into place, so no reader ever sees a key half written.

    Args:
        key_file: Where the key goes; missing folders are created with mode 0700.
        secret: The key's bytes (default: `KEY_BYTES` random bytes from the system).
    """
    parents = (key_file.parent, *key_file.parent.parents)
    missing = [folder for folder in parents if not folder.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)
    # Named by a token and the process (last: `remove_killed_asides` reads it), so that
    # threads of one process making the key at once do not share an aside.
    aside = key_file.with_name(f".{key_file.name}.{secrets.token_hex(4)}.{os.getpid()}.tmp")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, os.urandom(KEY_BYTES) if secret is None else secret)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(aside, key_file)
    except FileExistsError:
        pass  # another process created the key first: use theirs
    finally:
        aside.unlink()


def remove_killed_asides(key_file: Path) -> None:
    """Remove what a killed `create_key` left aside for `key_file` or a key rotated from it.

    An aside is named by its process: one of a process no longer running is a key never put
    in place, or a second name of one that was; secret bytes are not left lying about.
    """
    for aside in key_file.parent.glob(f".{key_file.name}*.tmp"):
        _, _, pid = aside.name.removesuffix(".tmp").rpartition(".")
        if pid.isdigit() and not _running(int(pid)):
            aside.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


FINGERPRINT_LABEL = b"cellcensus key fingerprint\x00"
"""What `key_fingerprint` authenticates: it ends in a NUL byte, unlike a subscriber number, so
a fingerprint is never some subscriber's pseudonym."""


def key_fingerprint(key: bytes) -> str:
    """A short public name of a key: HMAC-SHA256 of a fixed label under it, 16 hex digits.

    Two keys with the same fingerprint are the same key (but for a 2^-64 chance); the
    fingerprint tells nothing of the key, so stores and messages may carry it.

    Args:
        key: A 32-byte pseudonymisation key.

    Returns:
        The first 8 bytes of the HMAC, as hex.
    """
    return hmac.digest(key, FINGERPRINT_LABEL, "sha256")[:8].hex()


def pseudonymise(*, user_ids: Sequence[str], key: bytes) -> npt.NDArray[np.int64]:
    """Pseudonyms of distinct subscriber identifiers (call it once per distinct id).

    Args:
        user_ids: Subscriber identifiers as the operator knows them.
        key: The holder's 32-byte secret key.

    Returns:
        One int64 device id per identifier, in the same order.
    """
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    digests = []
    for user_id in user_ids:
        mac = keyed.copy()  # the key's padded inner and outer states are computed only once
        mac.update(user_id.encode("utf-8"))
        digests.append(mac.digest()[:8])
    return np.frombuffer(b"".join(digests), dtype=">i8").astype(np.int64)


def device_id(*, user_id: str, key: bytes) -> int:
    """The pseudonym of one subscriber identifier (for checks and tests).

    Args:
        user_id: A subscriber identifier.
        key: The holder's secret key.

    Returns:
        The signed 64-bit device id the store holds for `user_id`.
    """
    digest = hmac.digest(key, user_id.encode("utf-8"), "sha256")
    return int.from_bytes(digest[:8], "big", signed=True)
