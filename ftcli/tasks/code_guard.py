"""The child side of `ftcli.tasks.code_runs`: limits, isolation and a guard, then the program.

`code_runs.run_program` starts this file as a script (`python -I -B code_guard.py`) in a new
session, with an empty environment and an empty working directory, and writes one JSON line to
its stdin (the fields `main` reads). Before any of the program runs, this script:

1. sets hard resource limits: CPU seconds, address space, file size, no core files. Hard, so
   the program cannot raise them again;
2. on Linux, moves itself into new user and network namespaces, where there is no network but a
   loopback interface that is down. When that works, it also caps the processes and threads of
   the new namespace (RLIMIT_NPROC counts only those there, except for root, which the kernel
   never limits). It asks the kernel to kill it when the runner dies, and forbids gaining
   privileges through exec;
3. installs an audit hook (`sys.addaudithook`) that raises PermissionError for writes outside the
   working directory, for network use, for starting or signalling processes, for calling C code
   through ctypes, and for changing the limits. It reports each refusal on stderr too
   (`REFUSED`), so the runner can name it even when the program catches the exception;
4. runs the program and, only when it returns, writes the runner's nonce to the marker file
   descriptor. A program that calls `sys.exit` or `os._exit` before `check` returns does not pass.

The limits are set here and not in a `preexec_fn`: `preexec_fn` is unsafe in a process with
threads, and the runner starts programs from a thread pool.

The hook keeps what it relies on in closures taken at install time, so rebinding a module
global does not switch it off. It is still no security boundary (see `code_runs`): code that
patches the standard-library functions it calls, races it, opens a file relative to a directory
descriptor (the `open` event does not carry `dir_fd`) or calls what raises no event at all
(`os.mknod`, `os.mkfifo`) can get past it.

It imports only the standard library. It runs under whatever interpreter runs the program, with
no access to ftcli.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import signal
import sys
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

try:
    # Imported before the guard refuses `ctypes.dlopen`, so that importing ctypes (and numpy, which
    # imports it) still works in the program while calling C code through it does not.
    import ctypes
except ImportError:  # an interpreter built without _ctypes
    ctypes = None  # type: ignore[assignment]

REFUSED = "ftcli-guard refused: "  # starts the line on stderr that reports a refusal

# Events refused whatever their arguments.
ALWAYS_REFUSED = frozenset(
    {
        # network
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyaddr",
        "socket.gethostbyname",
        "socket.getnameinfo",
        "socket.sendmsg",
        "socket.sendto",
        # processes
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "os.posix_spawn",
        "os.spawn",
        "os.startfile",
        "os.system",
        "pty.spawn",
        "subprocess.Popen",
        # C code and raw memory through ctypes
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.string_at",
        "ctypes.wstring_at",
        # the limits, and the ways to reach the hook's function object to rewrite it
        "resource.prlimit",
        "resource.setrlimit",
        "gc.get_objects",
        "gc.get_referents",
        "gc.get_referrers",
    }
)

# Events that change the file system: for each, the (path, dir_fd) argument positions of each path
# it touches (dir_fd None where the event has none), and whether the path's last component is
# followed when it is a symbolic link. A path must lie inside the working directory.
PATH_EVENTS: dict[str, tuple[tuple[tuple[int, int | None], ...], bool]] = {
    "os.chmod": (((0, 2),), True),
    "os.chown": (((0, 3),), True),
    "os.link": (((0, 2), (1, 3)), True),  # both ends: a hard link inside is a way to write outside
    "os.mkdir": (((0, 2),), False),
    "os.remove": (((0, 1),), False),
    "os.removexattr": (((0, None),), True),
    "os.rename": (((0, 2), (1, 3)), False),
    "os.rmdir": (((0, 1),), False),
    "os.setxattr": (((0, None),), True),
    "os.symlink": (((1, 2),), False),  # the link; its target is checked apart
    "os.truncate": (((0, None),), True),
    "os.utime": (((0, 3),), True),
    "shutil.rmtree": (((0, 1),), False),
}

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
CLONE_NEWUSER = 0x10000000  # <linux/sched.h>; os.CLONE_* exist from Python 3.12
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PR_SET_NO_NEW_PRIVS = 38


def set_limits(cpu_s: int, memory_bytes: int, file_bytes: int) -> None:
    """Hard limits on CPU time (SIGXCPU, then SIGKILL a second later), address space, file size."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def isolate(processes: int, runner_pid: int) -> None:
    """On Linux: no network, a cap on processes, death with the runner, no privilege gain by exec.

    Each step is best effort: where user namespaces are disabled or there is no libc to call, the
    program runs without it (the guard still refuses sockets and new processes).
    """
    if not sys.platform.startswith("linux") or ctypes is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    if hasattr(os, "unshare"):
        try:
            os.unshare(CLONE_NEWUSER | CLONE_NEWNET)
            isolated = True
        except OSError:
            isolated = False
    else:
        isolated = libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0
    if isolated:
        # Counted per user namespace, so this caps only the program's own processes and threads.
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    # After the unshare, which clears it; and the runner may have died before this line.
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != runner_pid:
        os._exit(1)


def install_guard(work: str) -> None:
    """Install the audit hook that confines writes to `work` and refuses `ALWAYS_REFUSED`."""
    always = ALWAYS_REFUSED
    path_events = MappingProxyType(dict(PATH_EVENTS))
    write_flags = WRITE_FLAGS
    refused_line = REFUSED.encode()
    root = os.path.realpath(work)
    inside_prefix = root.rstrip(os.sep) + os.sep
    devnull = os.path.realpath(os.devnull)
    realpath, join, split, isabs = os.path.realpath, os.path.join, os.path.split, os.path.isabs
    isdir, fsdecode, fspath, readlink, write = os.path.isdir, os.fsdecode, os.fspath, os.readlink, os.write
    denied = builtins.PermissionError
    hooks: list[Callable[[str, tuple[Any, ...]], None]] = []

    def refuse(what: str) -> None:
        try:
            write(2, refused_line + what.encode(errors="replace")[:300] + b"\n")
        except OSError:
            pass
        raise denied(f"refused by the code guard: {what}")

    def location(path: Any, dir_fd: Any, follow: bool) -> str | None:
        """Where `path` (relative to `dir_fd` when given) lies, resolved; None when unknowable."""
        if isinstance(path, int):
            return realpath(readlink(f"/proc/self/fd/{path}")) if isdir("/proc/self/fd") else None
        text = fsdecode(fspath(path))
        if not isabs(text) and isinstance(dir_fd, int) and dir_fd >= 0:
            if not isdir("/proc/self/fd"):
                return None
            text = join(readlink(f"/proc/self/fd/{dir_fd}"), text)
        if follow:
            return realpath(text)
        parent, name = split(text.rstrip(os.sep) or os.sep)
        if name in ("", ".", ".."):
            return realpath(text)
        return join(realpath(parent or "."), name)

    def inside(place: str | None) -> bool:
        return place is not None and (place == root or place.startswith(inside_prefix))

    def check_paths(event: str, args: tuple[Any, ...]) -> None:
        positions, follow = path_events[event]
        for at, dir_at in positions:
            dir_fd = args[dir_at] if dir_at is not None and dir_at < len(args) else None
            if not inside(location(args[at], dir_fd, follow)):
                refuse(f"{event} {args[at]!r} (outside the working directory)")
        if event == "os.symlink":
            target, link = args[0], args[1]
            target_text = fsdecode(fspath(target))
            link_place = location(link, args[2], False) or ""
            if not inside(realpath(join(split(link_place)[0], target_text))):
                refuse(f"os.symlink to {target!r} (outside the working directory)")

    def check_open(args: tuple[Any, ...]) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(path, int):
            return  # an open descriptor: its own open was checked
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & write_flags
        )
        if not writes and mode is not None:
            return  # reading through `open` (an os.open of a directory is looked at below)
        place = location(path, None, True)
        if writes:
            if place != devnull and not inside(place):
                refuse(f"open {path!r} for writing (outside the working directory)")
        elif place is not None and not inside(place) and isdir(place):
            # os.open of a directory outside: its descriptor could serve as a dir_fd for writes
            refuse(f"os.open of the directory {path!r} (outside the working directory)")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in always:
            refuse(f"{event} {args!r}"[:300])
        elif event == "open":
            guarded(check_open, args)
        elif event in path_events:
            guarded(lambda a: check_paths(event, a), args)
        elif event == "object.__setattr__" and args and any(args[0] is h for h in hooks):
            refuse("changing the code guard")

    def guarded(check: Callable[[tuple[Any, ...]], None], args: tuple[Any, ...]) -> None:
        try:
            check(args)
        except denied:
            raise
        except Exception as exc:  # an argument the checks cannot read: refuse rather than allow
            refuse(f"unreadable arguments ({type(exc).__name__}: {exc})")

    hooks.append(hook)
    sys.addaudithook(hook)


def run(program: str, marker_fd: int, nonce: str) -> None:
    """Execute the program as `__main__` would run; mark success only when it returns."""
    with open(program, encoding="utf-8") as file:
        code = compile(file.read(), program, "exec")
    exec(code, {"__name__": "__main__", "__builtins__": builtins})
    os.write(marker_fd, nonce.encode())


def main() -> None:
    setup = json.loads(sys.stdin.readline())
    set_limits(setup["cpu_s"], setup["memory_bytes"], setup["file_bytes"])
    isolate(setup["processes"], setup["runner_pid"])
    install_guard(setup["work"])
    sys.argv = ["program.py"]
    run(setup["program"], setup["marker_fd"], setup["nonce"])


if __name__ == "__main__":
    main()
