"""Confining a process that runs untrusted code: Linux Landlock and seccomp, no privileges.

A conformance run executes a submitted module, and so does a job of certified submitted code.
Time and memory are limited by rlimits (`limit_resources`); `confine` limits what it can
reach. Both bind the threads of the process that exist when it confines itself and those they
start later, so `confine` refuses a process of several threads: a library that started
threads at import (NumPy's BLAS, Arrow's allocator, Polars' pool) would leave them outside,
and code on such a thread (a signal handler runs on any thread that does not block the
signal) would be free. `holder.untrusted` confines first and imports after.

After `confine`, the process (and anything it starts) can read only Python's own files, the
installed packages and cellcensus's code, can write only in a fresh private temporary folder,
cannot open TCP connections or bind ports (Landlock ABI 4+), cannot signal processes or reach
abstract unix sockets outside its domain (ABI 6+), and cannot ptrace the service. Landlock
rules only TCP, so a seccomp filter refuses every new socket or socket pair (UDP, a unix
socket's path such as PostgreSQL's, netlink) and io_uring, which could open one beside the
filter. So a submission cannot read the store, the state database or the token key, write to
them, or send anything anywhere. A job of submitted code is confined the same way, with read
access to its period's tables (`enclave.confined`).

Landlock is in Linux since 5.13 (ABI 1; TCP rules since 6.7). Where the kernel lacks it, the
files part of what `confine` returns is ``"none"`` and a conformance run goes on with rlimits
and the filter only; its report says which sandbox applied (``sandbox``), so the steward
knows. The seccomp filter (Linux 3.17) is written for x86-64 and AArch64; elsewhere the
report says it is missing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import signal
import struct
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # same numbers on every arch
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ABI1 = (1 << 13) - 1  # execute ... make_sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE
_READ = _EXECUTE | _READ_FILE | _READ_DIR
_NET_ALL = 0b11  # bind_tcp, connect_tcp (ABI 4)
_SCOPE_ALL = 0b11  # abstract unix sockets, signals (ABI 6)

SYSTEM_READ_ONLY = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/dev/null",
    "/dev/urandom",
    "/proc/self",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
)
"""System files an interpreter and its native libraries read (shared libraries, CPU count)."""


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    version = int(
        _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    )
    return max(version, 0)


@dataclass(frozen=True)
class _Arch:
    audit: int  # AUDIT_ARCH_* of seccomp_data.arch
    socket: int  # __NR_socket
    socketpair: int  # __NR_socketpair
    seccomp: int  # __NR_seccomp
    x32: bool  # x86-64's second system call table (numbers from 0x40000000)


_ARCHES = {
    "x86_64": _Arch(audit=0xC000003E, socket=41, socketpair=53, seccomp=317, x32=True),
    "aarch64": _Arch(audit=0xC00000B7, socket=198, socketpair=199, seccomp=277, x32=False),
}
_IO_URING_SETUP = 425  # the same on every arch
_LD_W_ABS, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06  # classic BPF opcodes
_ALLOW, _REFUSE = 0x7FFF0000, 0x00050000 | errno.EACCES  # SECCOMP_RET_ALLOW, RET_ERRNO


def no_sockets_filter(arch: _Arch) -> list[tuple[int, int, int, int]]:
    """A seccomp program (code, jt, jf, k) refusing socket(), socketpair() and io_uring.

    With EACCES. A datagram socket pair could still send to a unix socket's path, which
    Landlock does not rule. Open sockets stay usable: a confined process is handed none.
    Another arch's system calls (x86-64's int 0x80 into the i386 table, where ``socketcall``
    opens sockets) and x32's are refused whole: Python uses neither.
    """
    program = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ, 1, 0, arch.audit),
        (_RET, 0, 0, _REFUSE),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if arch.x32:
        program.append((_JGE, 4, 0, 0x40000000))
    program += [
        (_JEQ, 3, 0, arch.socket),
        (_JEQ, 2, 0, arch.socketpair),
        (_JEQ, 1, 0, _IO_URING_SETUP),
        (_RET, 0, 0, _ALLOW),
        (_RET, 0, 0, _REFUSE),
    ]
    return program


def _refuse_sockets(libc: ctypes.CDLL) -> bool:
    """Install `no_sockets_filter` on this process (after no_new_privs); False if no arch."""
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return False
    program = no_sockets_filter(arch)
    filters = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *i) for i in program))
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(filters))  # sock_fprog
    # TSYNC: every thread of the process, should one have started despite `_one_thread`.
    flags = _SECCOMP_FILTER_FLAG_TSYNC
    if libc.syscall(arch.seccomp, _SECCOMP_SET_MODE_FILTER, flags, fprog) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER) failed")
    return True


def _one_thread() -> None:
    """Refuse to confine a process of several threads: the others would stay free."""
    threads = sum(1 for _ in Path("/proc/self/task").iterdir())
    if threads != 1:
        raise OSError(
            errno.EBUSY,
            f"cannot confine a process of {threads} threads: Landlock binds only the calling "
            "thread; confine before importing libraries that start threads (holder.untrusted)",
        )


def limit_resources(*, memory_mb: int, timeout_s: float, file_mb: int | None = None) -> None:
    """Cap this process's address space, CPU time and (optionally) file size (POSIX rlimits).

    No core dumps either: a crashing worker must not fill the disk.
    """
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    seconds = int(timeout_s) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if file_mb is not None:
        size = file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    signal.alarm(seconds)  # a worker orphaned by a killed service still ends on its own


def python_read_only() -> set[str]:
    """Folders holding the interpreter, the installed packages and cellcensus's code.

    Not the working directory (`sys.path` may start with it): the store may be beneath it.
    """
    import cellcensus

    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, *cellcensus.__path__}
    found |= {entry for entry in sys.path if "-packages" in entry}
    found.discard("")
    return found | {str(Path(entry).resolve()) for entry in found}


def confine(scratch: str, *, read_only: Sequence[str] = ()) -> str:
    """Confine this process; return the sandbox applied, e.g. ``"landlock ABI 7, no sockets"``.

    Sets ``TMPDIR`` to `scratch` (an empty folder the caller removes afterwards), the only
    place it may then write. `read_only`: further files or folders it may read (a job of
    submitted code reads the store's tables). Without Landlock the files part is ``"none"``.

    Raises:
        OSError: The process has several threads, or the kernel refused the rules (the
            caller should stop).
    """
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch
    _one_thread()
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    abi = landlock_abi()
    files = _restrict_files(libc, abi, scratch, read_only) if abi >= 1 else "none"
    sockets = "no sockets" if _refuse_sockets(libc) else "sockets not filtered on this arch"
    return f"{files}, {sockets}"


def _restrict_files(libc: ctypes.CDLL, abi: int, scratch: str, read_only: Sequence[str]) -> str:
    """Landlock: read Python's files and `read_only`, write `scratch`, no TCP, no signals."""
    handled_fs = _FS_ABI1 | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    fields: tuple[int, ...] = (handled_fs,)
    if abi >= 4:
        fields += (_NET_ALL,)
    if abi >= 6:
        fields += (_SCOPE_ALL,)
    attr = struct.pack(f"={len(fields)}Q", *fields)
    ruleset = int(libc.syscall(_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), 0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in sorted(python_read_only() | set(SYSTEM_READ_ONLY) | set(read_only)):
            _allow(libc, ruleset, path, _READ & handled_fs)
        _allow(libc, ruleset, scratch, handled_fs)
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return f"landlock ABI {abi}"


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, access: int) -> None:
    try:
        handle = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # not on this system
    try:
        if not Path(path).is_dir():
            access &= _FILE_RIGHTS
        rule = struct.pack("=Qi", access, handle)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(handle)
