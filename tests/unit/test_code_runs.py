"""`ftcli.tasks.code_runs`: generated programs run contained, and pass@1 counts them.

The run tests start real child processes and check the containment by its effects: a file the
program tried to write outside its directory does not exist, a listening socket gets no
connection, a secret in this process's environment does not appear in the child's.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ftcli.tasks.code_runs import REFUSED, Limits, entry_point, pass_at_1, program, run_program

posix = pytest.mark.skipif(
    importlib.util.find_spec("resource") is None or os.name != "posix",
    reason="running programs needs POSIX sessions and resource limits",
)

LIMITS = Limits(timeout_s=1.5, memory_mb=512)

PROMPT = '''from typing import List


def helper(x: int) -> int:
    return x


def add(a: int, b: int) -> int:
    """Return the sum of a and b.

    >>> add(2, 3)
    5
    """
'''

TEST = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
"""


def run(source: str, limits: Limits = LIMITS):
    return run_program(textwrap.dedent(source), limits)


# --- building the program -------------------------------------------------------------------


def test_the_entry_point_is_the_last_top_level_function():
    assert entry_point(PROMPT) == "add"
    assert entry_point("def outer():\n    def inner():\n        pass\n") == "outer"
    assert entry_point("async def fetch(url):\n    ...\n") == "fetch"


def test_a_prompt_without_a_function_has_no_entry_point():
    with pytest.raises(ValueError, match="no top-level function"):
        entry_point("x = 1\n    def indented(): pass\n")


def test_the_program_is_prompt_completion_tests_then_check():
    source = program(PROMPT, "    return a + b\n", TEST, "add")
    assert source.startswith(PROMPT + "    return a + b\n")
    assert source.rstrip().endswith("check(add)")
    assert TEST in source
    exec(compile(source, "program.py", "exec"), {})  # runs check(add): raises if it fails


def test_a_first_line_stripped_of_its_indent_gets_the_body_indent_back():
    source = program(PROMPT, "total = a + b\n    return total\n", TEST, "add")
    assert '    """\n    total = a + b\n    return total\n' in source
    exec(compile(source, "program.py", "exec"), {})

    # a block opening on the first line: the prompt's body indent, not the deeper next line
    loop = "for _ in range(1):\n        return a + b\n"
    assert '    """\n    for _ in range(1):\n' in program(PROMPT, loop, TEST, "add")


def test_without_a_docstring_the_indent_comes_from_the_completion_or_four_spaces():
    header = "def add(a, b):\n"
    source = program(header, "total = a + b\n  return total\n", TEST, "add")
    assert source.startswith("def add(a, b):\n  total = a + b\n  return total\n")
    exec(compile(source, "program.py", "exec"), {})
    assert program(header, "return a + b", TEST, "add").startswith("def add(a, b):\n    return a + b")


def test_indented_or_top_level_completions_are_left_alone():
    assert program(PROMPT, "  return a + b\n", TEST, "add").startswith(PROMPT + "  return a + b\n")
    top_level = "x = 1\n\n\n"  # the prompt has already left its function
    assert program(top_level, "y = 2\n", "", "f").startswith("x = 1\n\n\ny = 2\n")
    mid_line = 'def add(a, b):\n    """Sum."""\n    return'
    assert program(mid_line, " a + b\n", TEST, "add").startswith(mid_line + " a + b\n")


# --- running it -----------------------------------------------------------------------------


@posix
def test_a_right_answer_passes_and_a_wrong_one_names_the_assertion():
    right = run_program(program(PROMPT, "    return a + b\n", TEST, "add"), LIMITS)
    wrong = run_program(program(PROMPT, "    return a - b\n", TEST, "add"), LIMITS)
    assert (right.passed, right.reason) == (True, "passed")
    assert (wrong.passed, wrong.reason) == (False, "failed: AssertionError")
    assert "Traceback" in wrong.output


@posix
def test_tests_may_import_pytest():
    outcome = run("from pytest import approx\nassert 0.1 + 0.2 == approx(0.3)\n")
    assert outcome.passed, outcome.output


@posix
def test_exiting_early_does_not_pass():
    for exit_call in ("import sys; sys.exit(0)", "import os; os._exit(0)"):
        outcome = run(f"{exit_call}\nassert False\n")
        assert (outcome.passed, outcome.reason) == (False, "failed: exited before the tests finished")


@posix
def test_an_endless_loop_times_out_within_the_limit():
    start = time.monotonic()
    outcome = run("while True:\n    pass\n")
    elapsed = time.monotonic() - start
    assert (outcome.passed, outcome.reason) == (False, "timeout")
    assert LIMITS.timeout_s <= elapsed < LIMITS.timeout_s + 1.0


@posix
def test_memory_bombs_are_stopped_and_this_process_is_unharmed():
    import resource

    limit_before = resource.getrlimit(resource.RLIMIT_AS)
    at_once = run("x = bytearray(8 * 1024**3)\n")
    growing = run("x = []\nwhile True:\n    x.append(bytearray(1024 * 1024))\n")
    assert (at_once.passed, at_once.reason) == (False, "memory")
    assert (growing.passed, growing.reason) == (False, "memory")
    assert resource.getrlimit(resource.RLIMIT_AS) == limit_before
    assert len(bytearray(600 * 1024**2)) == 600 * 1024**2  # more than the child was allowed


@posix
def test_writes_outside_the_working_directory_are_refused(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    kept = tmp_path / "kept.txt"
    kept.write_text("keep me")
    attempts = [
        f"open({str(outside)!r}, 'w').write('x')",
        f"import pathlib; pathlib.Path({str(outside)!r}).write_text('x')",
        f"import os; os.close(os.open({str(outside)!r}, os.O_WRONLY | os.O_CREAT))",
        f"import os; os.chdir({str(tmp_path)!r}); open('outside.txt', 'a')",
        f"import os; os.symlink({str(tmp_path)!r}, 'link'); open('link/outside.txt', 'w')",
        f"import os; os.remove({str(kept)!r})",
        f"import shutil; shutil.rmtree({str(tmp_path)!r})",
    ]
    for attempt in attempts:
        outcome = run(attempt + "\n")
        assert not outcome.passed, attempt
        assert outcome.reason.startswith("refused: "), (attempt, outcome.reason)
        assert not outside.exists(), attempt
    assert kept.read_text() == "keep me"


@posix
def test_the_working_directory_is_empty_writable_and_removed_afterwards():
    outcome = run(
        """
        import os, pathlib, shutil, tempfile
        assert os.listdir(".") == []
        with open("inside.txt", "w") as f:
            f.write("data")
        assert pathlib.Path("inside.txt").read_text() == "data"
        os.makedirs("a/b")
        shutil.rmtree("a")
        with tempfile.TemporaryDirectory() as scratch:
            pathlib.Path(scratch, "x").touch()
        assert os.environ["HOME"] == os.environ["TMPDIR"] == os.getcwd()
        print(os.getcwd())
        """
    )
    assert outcome.passed, outcome.output
    workdir = Path(outcome.output.strip().splitlines()[-1])
    assert workdir.is_absolute() and not workdir.exists()


@posix
def test_the_environment_carries_no_secrets(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_secret_value")
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    outcome = run(
        """
        import os
        print(dict(os.environ))
        assert "HF_TOKEN" not in os.environ and "PYTHONPATH" not in os.environ
        """
    )
    assert outcome.passed, outcome.output
    assert "hf_secret_value" not in outcome.output and "aws_secret_value" not in outcome.output


@posix
def test_connecting_to_a_listening_socket_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        for attempt in (
            f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1)",
            f"import socket; s = socket.socket(); s.settimeout(1); s.connect(('127.0.0.1', {port}))",
        ):
            outcome = run(attempt + "\n")
            assert not outcome.passed
            assert outcome.reason.startswith("refused: socket."), outcome.reason
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()


@posix
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="network namespaces are Linux's")
def test_in_its_own_namespace_the_program_has_no_network_but_loopback():
    outcome = run("import os, socket\nprint(os.getuid(), [name for _, name in socket.if_nameindex()])\n")
    assert outcome.passed, outcome.output
    uid, interfaces = outcome.output.split(" ", 1)
    if int(uid) == os.getuid():
        pytest.skip("user namespaces are not available here: the guard alone keeps the network away")
    assert interfaces.strip() == "['lo']"


@posix
def test_starting_processes_is_refused():
    for attempt, event in (
        ("import subprocess; subprocess.run(['true'])", "subprocess.Popen"),
        ("import os; os.system('true')", "os.system"),
        ("import os; os.fork()", "os.fork"),
        ("import ctypes; ctypes.CDLL(None).getpid()", "ctypes.dlopen"),
    ):
        outcome = run(attempt + "\n")
        assert not outcome.passed
        assert outcome.reason.startswith(f"refused: {event}"), outcome.reason


@posix
def test_a_caught_refusal_is_still_named():
    outcome = run(
        """
        import subprocess
        try:
            subprocess.run(["true"])
        except PermissionError:
            pass
        assert False
        """
    )
    assert outcome.reason.startswith("refused: subprocess.Popen")


@posix
def test_the_guard_reports_refusals_in_the_line_the_runner_reads():
    from ftcli.tasks import code_guard

    assert code_guard.REFUSED == REFUSED


@posix
def test_pass_at_1_keeps_the_input_order():
    sources = [
        "import time\ntime.sleep(0.5)\n",  # passes last
        "assert False\n",
        "pass\n",
        "raise ValueError('no')\n",
    ]
    score, outcomes = pass_at_1(sources, LIMITS, workers=2)
    assert score == 0.5
    assert [o.reason for o in outcomes] == ["passed", "failed: AssertionError", "passed", "failed: ValueError: no"]
    assert pass_at_1([], LIMITS) == (0.0, [])
    with pytest.raises(ValueError, match="workers"):
        pass_at_1(sources, LIMITS, workers=0)


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Limits(timeout_s=0)
