"""Running model-written Python programs against their unit tests, contained, for pass@1.

A code problem gives a `prompt` (a function's header and docstring), the model a `completion`
that continues it, and the data a `test` that defines `check(candidate)`. `program` joins them
into one source; `run_program` runs it in a child process and says whether `check` returned;
`pass_at_1` does that for many programs at once.

Running generated code is dangerous, so the metric that uses this module is off unless a task's
config turns it on. Each program runs:

* in its own process and session, killed with its whole process group when the wall-clock
  timeout passes (with RLIMIT_CPU behind it);
* under hard resource limits: address space (RLIMIT_AS, so a memory bomb gets MemoryError or
  dies), file size (RLIMIT_FSIZE), no core files; and, where the child got its own user
  namespace, a cap on its processes (RLIMIT_NPROC, which the kernel never applies to root);
* in an empty temporary working directory, deleted afterwards, which is also its HOME and TMPDIR;
* with an environment that inherits nothing (`python -I`, and only PATH, HOME, TMPDIR, LANG and
  single-threaded BLAS), so no tokens, keys or PYTHON* settings reach it;
* on Linux, in new user and network namespaces (no network at all) where the kernel allows
  unprivileged user namespaces; elsewhere, or when it does not, with the network of the host;
* under an audit hook (`code_guard.py`) that refuses writes outside the working directory,
  sockets, new processes, signals, C calls through ctypes and raising the limits.

The audit hook is not a security boundary. Python's documentation says audit hooks cannot be
used as a sandbox, and code that sets out to get past one (patching the functions it calls,
racing it, or using a door it does not watch) can. The process, the limits, the temporary
directory, the empty environment and the namespaces are the containment; the hook turns the
common accidents (a stray `rm`, a download, a `subprocess` call) into a clear "refused". Two
gaps follow: only the hook keeps writes inside the working directory, since the child has the
user's own file permissions; and reads are not restricted at all, so a program can read any file
the user can, and what it prints ends up in `Outcome.output`. For code from a strong or untrusted
model, run the evaluation inside a container or a virtual machine as well.

The success marker has the same limits: a program cannot pass by exiting early (`sys.exit`,
`os._exit`), but code that inspects the interpreter's frames could forge it.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GUARD = Path(__file__).with_name("code_guard.py")  # the child's bootstrap, run as a script
REFUSED = "ftcli-guard refused: "  # the guard's report line on stderr (`code_guard.REFUSED`)
FILE_MB = 16  # RLIMIT_FSIZE: the largest file (and captured stream) a program can write
PROCESSES = 64  # RLIMIT_NPROC in the child's own user namespace: processes and threads
DETAIL_CHARS = 200  # the most of a stderr line a reason quotes


@dataclass(frozen=True)
class Limits:
    """What one program may use."""

    timeout_s: float = 10.0  # wall clock, interpreter start included; RLIMIT_CPU is a second above
    memory_mb: int = 1024  # address space (RLIMIT_AS), not resident memory
    output_kb: int = 64  # of stdout (its start) and of stderr (its end) kept in `Outcome.output`

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.memory_mb > 0 and self.output_kb > 0):
            raise ValueError(f"limits must be positive, got {self}")


@dataclass(frozen=True)
class Outcome:
    """How one program ended.

    `reason` is "passed", "timeout", "memory", "refused: <what the guard blocked>",
    "crashed: <signal>" or "failed: <the last line of stderr>" (for a failed assertion,
    "failed: AssertionError"). `output` holds the captured stdout and stderr, truncated.
    """

    passed: bool
    reason: str
    output: str = ""


def entry_point(prompt: str) -> str:
    """The name of the last top-level function the prompt defines: the one the tests call.

    Raises:
        ValueError: the prompt has no line starting with `def name(` (the caller reports it as a
            data error).
    """
    names = re.findall(r"^(?:async[ \t]+)?def[ \t]+([^\W\d]\w*)[ \t]*\(", prompt, flags=re.MULTILINE)
    if not names:
        raise ValueError("the prompt defines no top-level function: no line starts with `def name(`")
    return str(names[-1])


def program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The source to run: the prompt continued by the completion, the tests, then `check(entry_point)`.

    Generated text often arrives with its leading whitespace stripped, which turns the first line
    of a function body into a top-level statement (an IndentationError, or code outside the
    function). So when the prompt ends inside a `def` block at the start of a line and the
    completion's first line has no indentation, that line gets the body's indentation: the
    indentation of the prompt's own body lines (its docstring) when it has any; else, unless the
    first line opens a block, the smallest indentation of the completion's later lines that is
    deeper than the `def`; else the `def`'s plus four spaces. A completion that really starts a
    new top-level statement right after a `def` with no body is the case this gets wrong.
    """
    completion = _restore_first_indent(prompt, completion)
    return f"{prompt}{completion}\n\n{test}\n\ncheck({entry_point})\n"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _restore_first_indent(prompt: str, completion: str) -> str:
    first, _, rest = completion.partition("\n")
    if not first.strip() or first[0].isspace() or (prompt and not prompt.endswith("\n")):
        return completion
    lines = prompt.splitlines()
    headers = [i for i, line in enumerate(lines) if re.match(r"[ \t]*(?:async[ \t]+)?def\b", line)]
    if not headers:
        return completion
    header = headers[-1]
    def_indent = _indent(lines[header])
    body = [line for line in lines[header + 1 :] if line.strip()]
    if any(len(_indent(line)) <= len(def_indent) for line in body):
        return completion  # the prompt has left the function
    if body:
        indent = _indent(body[-1])
    else:
        deeper = [_indent(line) for line in rest.splitlines() if line.strip()]
        deeper = [i for i in deeper if len(i) > len(def_indent)]
        indent = min(deeper, key=len) if deeper and not first.rstrip().endswith(":") else def_indent + "    "
    return indent + completion


def run_program(source: str, limits: Limits) -> Outcome:
    """Run one program in a contained child process (see the module docstring) and say how it ended.

    Raises:
        OSError: not a POSIX system (the containment relies on sessions and resource limits).
    """
    if os.name != "posix":
        raise OSError("running generated programs needs a POSIX system (Linux or macOS)")
    with tempfile.TemporaryDirectory(prefix="ftcli-code-", ignore_cleanup_errors=True) as scratch:
        outer = Path(scratch)
        work = outer / "work"
        work.mkdir()
        program_path = outer / "program.py"
        program_path.write_text(source, encoding="utf-8")
        nonce = secrets.token_hex(16)
        with (
            open(outer / "stdout", "wb+") as stdout,
            open(outer / "stderr", "wb+") as stderr,
            open(outer / "marker", "wb+") as marker,
        ):
            setup: dict[str, object] = {
                "work": str(work),
                "program": str(program_path),
                "marker_fd": marker.fileno(),
                "nonce": nonce,
                "cpu_s": math.ceil(limits.timeout_s) + 1,
                "memory_bytes": limits.memory_mb * 1024**2,
                "file_bytes": FILE_MB * 1024**2,
                "processes": PROCESSES,
                "runner_pid": os.getpid(),
            }
            timed_out, returncode = _run_child(setup, work, (stdout, stderr, marker), limits.timeout_s)
            marked = _read(marker, 64, head=True) == nonce
            out = _read(stdout, limits.output_kb * 1024, head=True)
            err = _read(stderr, limits.output_kb * 1024, head=False)
    output = out + ("\n" if out and err and not out.endswith("\n") else "") + err
    return Outcome(*_verdict(timed_out, returncode, marked, err), output=output)


def _child_env(work: Path) -> dict[str, str]:
    home = str(work)
    return {
        "PATH": os.defpath,
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        # Programs run side by side, each under a thread cap; BLAS must not start one per core.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def _run_child(
    setup: dict[str, object], work: Path, files: tuple[BinaryIO, BinaryIO, BinaryIO], timeout_s: float
) -> tuple[bool, int]:
    """Start the guard with `setup`, wait at most `timeout_s`, kill its process group.

    `files` are the child's stdout, stderr and success marker. Returns whether it timed out, and its
    exit status (negative: the signal that ended it).
    """
    stdout, stderr, marker = files
    child = subprocess.Popen(
        [sys.executable, "-I", "-B", str(GUARD)],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        cwd=work,
        env=_child_env(work),
        pass_fds=(marker.fileno(),),
        start_new_session=True,
    )
    timed_out = True
    try:
        assert child.stdin is not None
        try:
            child.stdin.write(json.dumps(setup).encode() + b"\n")
            child.stdin.close()
        except BrokenPipeError:
            pass  # it died at start; its exit status says why
        timed_out = not _wait_unreaped(child, timeout_s)
    finally:
        # The child is not reaped yet, so its process group id still names only its own group.
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        returncode = child.wait()
    return timed_out, returncode


def _wait_unreaped(child: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait until the child exits or `timeout_s` passes, leaving it unreaped; whether it exited.

    An unreaped child keeps its process id, and so its process group id, from being reused, which
    makes the `killpg` after this safe. Where `os.waitid` is missing (macOS before Python 3.13)
    this reaps it, and the group is killed just after.
    """
    if not hasattr(os, "waitid"):
        try:
            child.wait(timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        if os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.02)


def _read(file: BinaryIO, limit: int, head: bool) -> str:
    """At most `limit` bytes of a captured stream: its start (`head`) or its end, as text."""
    size = file.seek(0, os.SEEK_END)
    file.seek(0 if head else max(0, size - limit))
    data = file.read(limit)
    cut = size > limit
    text = data.decode("utf-8", errors="replace")
    if not cut:
        return text
    return text + "\n[... output truncated]\n" if head else "[output truncated ...]\n" + text


def _verdict(timed_out: bool, returncode: int, marked: bool, stderr: str) -> tuple[bool, str]:
    """(passed, reason) from how the child ended and the end of its stderr."""
    if timed_out:
        return False, "timeout"
    if returncode == 0 and marked:
        return True, "passed"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if returncode < 0:
        if -returncode == signal.SIGXCPU:
            return False, "timeout"
        if -returncode == signal.SIGKILL:
            return False, "memory"  # the kernel's out-of-memory killer, or the CPU hard limit
        return False, f"crashed: {_signal_name(-returncode)}"
    if last.startswith("MemoryError"):
        return False, "memory"
    refusals = [line[len(REFUSED) :] for line in lines if line.startswith(REFUSED)]
    if refusals:
        return False, "refused: " + refusals[0][:DETAIL_CHARS]
    if returncode == 0:
        return False, "failed: exited before the tests finished"
    return False, "failed: " + (last[:DETAIL_CHARS] if last else f"exit status {returncode}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def pass_at_1(sources: Sequence[str], limits: Limits, workers: int | None = None) -> tuple[float, list[Outcome]]:
    """The fraction of `sources` that pass, and each one's outcome in input order (0.0 for none).

    They run side by side in `workers` child processes (default: up to 4, at most one per core).
    """
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not sources:
        return 0.0, []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="code-run")
    try:
        outcomes = list(pool.map(lambda source: run_program(source, limits), sources))
    finally:
        # On an interrupt, start no more programs; those running end within their timeout.
        pool.shutdown(wait=True, cancel_futures=True)
    return sum(o.passed for o in outcomes) / len(outcomes), outcomes
