"""The test suite at both ends of the dependency ranges in pyproject.toml, each in a fresh venv.

`lowest`: every dependency in `[project] dependencies` pinned to its lower bound (a constraints
file of `name==lower` lines generated from pyproject.toml), so a range whose lower end no longer
works shows up. Packages the project does not name resolve as pip picks them, newest first, as
they would for a user who pins only ftcli's dependencies. `newest`: a plain install, which pip
resolves to the newest releases the ranges allow, as a fresh install does. Both ends install torch
first (`--torch`, as .ci/run does, so no range pulls another build), then `-e .[dev]` from this
checkout (the dev tools at their newest at both ends), print the versions of the key libraries,
run pytest offline, and end with one table of versions, results and times.

    python scripts/check_deps.py                  # both ends, the whole suite (`python -m pytest -q`)
    python scripts/check_deps.py --fast           # both ends, `-m "not slow"`
    python scripts/check_deps.py --ends lowest --fast -- tests/unit    # extra pytest arguments after --
    python scripts/check_deps.py --torch 2.14.1 --keep --workdir /tmp/deps

Each venv takes about 2 GB (torch) and a few minutes to build; they are removed at the end unless
`--keep`, the logs stay in `--workdir`. Standard library only; Python 3.10 or newer (on 3.10,
without tomllib, the dependency list is read with a small parser). Exit code 0 when every end
installed and passed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TORCH = "2.13.0"  # the build .ci/run installs
ENDS = ("lowest", "newest")
# shown for each end, in this order: the fast-moving libraries first
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "evaluate", "tokenizers",
             "huggingface-hub", "safetensors", "sentence-transformers", "numpy", "scipy", "scikit-learn",
             "pyarrow", "hydra-core", "omegaconf", "pytest")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$")
SPECIFIER = re.compile(r"^\s*(===|~=|==|!=|<=|>=|<|>)\s*([^\s,;]+)\s*$")
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ends", default="lowest,newest", help="comma-separated: lowest, newest")
    parser.add_argument("--fast", action="store_true", help='run `-m "not slow"` instead of the whole suite')
    parser.add_argument("--torch", default=DEFAULT_TORCH, help="the torch version installed first at both ends")
    parser.add_argument("--python", default=sys.executable, help="the interpreter the venvs are built with")
    parser.add_argument("--workdir", type=Path, default=None, help="where venvs and logs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the venvs (about 2 GB each)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    args.ends = [end.strip() for end in args.ends.split(",") if end.strip()]
    unknown = [end for end in args.ends if end not in ENDS]
    if unknown or not args.ends:
        parser.error(f"--ends takes {', '.join(ENDS)}; got {args.ends}")
    return args


# ---------------------------------------------------------------- pyproject.toml and constraints


def project_dependencies(pyproject_text: str) -> list[str]:
    """The `[project] dependencies` list: with tomllib where it exists (3.11+), else a small parser."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return _dependencies_without_tomllib(pyproject_text)
    return list(tomllib.loads(pyproject_text).get("project", {}).get("dependencies", []))


def _dependencies_without_tomllib(pyproject_text: str) -> list[str]:
    """The quoted strings of `dependencies = [...]` in the `[project]` table, comments skipped.

    Enough for a list of requirement strings, which hold no quotes and, but for extras, no
    brackets: the list ends at the first line that starts with `]`."""
    table = re.search(r"^\[project\][ \t]*$(.*?)(?=^\[|\Z)", pyproject_text, re.M | re.S)
    body = table and re.search(r"^dependencies\s*=\s*\[(.*?)^\s*\]", table.group(1), re.M | re.S)
    if not body:
        return []
    return [string for line in body.group(1).splitlines() for string in _quoted_strings(line)]


def _quoted_strings(line: str) -> list[str]:
    """The quoted strings of one TOML line, up to a `#` outside them (a comment may hold quotes)."""
    strings, quote, current = [], "", ""
    for char in line:
        if quote:
            if char == quote:
                strings.append(current)
                quote, current = "", ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
    return strings


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: `Scikit_Learn` and `scikit-learn` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Requirement:
    """One dependency string split into what the constraints need: its name, bounds and marker."""

    name: str
    specifiers: list[tuple[str, str]] = field(default_factory=list)
    marker: str = ""

    @property
    def lower(self) -> str | None:
        """The lowest version the range admits, when the range names one (`>=`, `~=`, `==`)."""
        for operator, version in self.specifiers:
            if operator in (">=", "~=", "==", "===") and not version.endswith(".*"):
                return version
        return None


def parse_requirement(text: str) -> Requirement:
    """Split `name[extra]>=1.0,<2; marker` without `packaging`, which a bare interpreter may lack."""
    requirement, _, marker = text.partition(";")
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {text!r}")
    name, _extras, rest = match.groups()
    specifiers = []
    for part in filter(str.strip, rest.strip().strip("()").split(",")):
        spec = SPECIFIER.match(part)
        if spec is None:
            raise ValueError(f"unsupported version specifier {part.strip()!r} in {text!r}")
        specifiers.append((spec.group(1), spec.group(2)))
    return Requirement(normalise(name), specifiers, marker.strip())


def lowest_constraints(dependencies: list[str], torch: str) -> list[str]:
    """`name==lower` for every dependency (its marker kept), torch at the version installed first.

    A dependency without a lower bound cannot be pinned to one, so it is an error: the policy is
    that every range names the oldest release the suite has passed with."""
    lines, unbounded = [], []
    for text in dependencies:
        requirement = parse_requirement(text)
        version = torch if requirement.name == "torch" else requirement.lower
        if version is None:
            unbounded.append(text)
            continue
        lines.append(f"{requirement.name}=={version}" + (f"; {requirement.marker}" if requirement.marker else ""))
    if unbounded:
        raise ValueError(f"no lower bound to pin: {', '.join(unbounded)}")
    if not any(parse_requirement(line).name == "torch" for line in lines):
        lines.append(f"torch=={torch}")
    return lines


def newest_constraints(torch: str) -> list[str]:
    """Only torch, kept at the version installed first; everything else resolves to its newest."""
    return [f"torch=={torch}"]


# ---------------------------------------------------------------- building and testing one end


@dataclass
class EndResult:
    """What one end came to: its versions, the pytest summary and the time each part took."""

    end: str
    versions: dict[str, str] = field(default_factory=dict)
    result: str = "not run"
    passed: bool = False
    install_seconds: float = 0.0
    test_seconds: float = 0.0


def venv_env(venv: Path) -> dict[str, str]:
    """The environment of a command in the venv: its bin first on PATH, offline, no outside paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OFFLINE, VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return env


def run_logged(command: list[str], log: Path, env: dict[str, str], echo: bool = False) -> tuple[int, str]:
    """Run a command in the checkout, appending its output to `log` (and to stdout with `echo`).

    Returns the exit code and the last non-empty line, which for pytest is its summary. A stop
    (Ctrl-C, or SIGTERM, which main turns into SystemExit) ends the command too, not only this script."""
    last = ""
    with log.open("a", encoding="utf-8", buffering=1) as out:  # line by line, so a killed run keeps its log
        out.write(f"$ {' '.join(command)}\n")
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace")
        assert process.stdout is not None
        try:
            for line in process.stdout:
                out.write(line)
                if echo:
                    print(line, end="", flush=True)
                if line.strip():
                    last = line.strip()
            return process.wait(), last
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait()


def build_venv(args: argparse.Namespace, end: str, venv: Path, constraints: list[str], log: Path) -> bool:
    """A fresh venv with pip upgraded, torch first, then `-e .[dev]` under the end's constraints."""
    if venv.exists():
        shutil.rmtree(venv)
    constraints_file = venv.with_name(f"{end}-constraints.txt")
    constraints_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
    python = str(venv / "bin" / "python")
    env = venv_env(venv)
    steps = [
        [args.python, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [python, "-m", "pip", "install", "-q", f"torch=={args.torch}"],
        [python, "-m", "pip", "install", "-q", "-c", str(constraints_file), "-e", ".[dev]"],
    ]
    for step in steps:
        code, last = run_logged(step, log, env)
        if code != 0:
            print(f"  {end}: `{' '.join(step)}` failed ({last}); see {log}", flush=True)
            return False
    return True


def installed_versions(venv: Path) -> dict[str, str]:
    """The installed version of each of LIBRARIES in the venv ("–" for one that is not there)."""
    code = ("import importlib.metadata as m, json, sys\n"
            "def v(n):\n    try: return m.version(n)\n    except m.PackageNotFoundError: return '–'\n"
            "print(json.dumps({n: v(n) for n in sys.argv[1:]}))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code, *LIBRARIES], capture_output=True, text=True,
                         env=venv_env(venv), check=True).stdout
    return json.loads(out)


def summarise(returncode: int, last_line: str) -> tuple[bool, str]:
    """Whether pytest passed, and its counts (`816 passed, 10 deselected`) from its summary line."""
    counts = ", ".join(f"{n} {what}" for n, what in PYTEST_COUNT.findall(last_line)) or last_line[:80]
    return returncode == 0, ("passed: " if returncode == 0 else f"FAILED (exit {returncode}): ") + counts


def pytest_command(python: Path, args: argparse.Namespace) -> list[str]:
    """The README's test command, `-m "not slow"` with `--fast`, then the extra arguments."""
    return [str(python), "-m", "pytest", "-q", *(["-m", "not slow"] if args.fast else []), *args.pytest_args]


def check_end(args: argparse.Namespace, end: str, constraints: list[str]) -> EndResult:
    """Build one end's venv, print its versions, run the suite and time both parts."""
    result = EndResult(end)
    venv = args.workdir / end
    install_log, test_log = args.workdir / f"{end}-install.log", args.workdir / f"{end}-pytest.log"
    print(f"\n## {end}: building {venv} (constraints: {', '.join(constraints)})", flush=True)
    start = time.monotonic()
    built = build_venv(args, end, venv, constraints, install_log)
    result.install_seconds = time.monotonic() - start
    if not built:
        result.result = f"install failed (see {install_log.name})"
        return result
    result.versions = installed_versions(venv)
    print(f"  {end}: " + ", ".join(f"{name} {version}" for name, version in result.versions.items()), flush=True)
    command = pytest_command(venv / "bin" / "python", args)
    print(f"  {end}: {' '.join(command[1:])} (log: {test_log})", flush=True)
    start = time.monotonic()
    code, last = run_logged(command, test_log, venv_env(venv), echo=True)
    result.test_seconds = time.monotonic() - start
    result.passed, result.result = summarise(code, last)
    return result


# ---------------------------------------------------------------- the report


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def table(results: list[EndResult]) -> list[str]:
    """One column per end: each library's version, the result, and the install and test times."""
    lines = ["| | " + " | ".join(r.end for r in results) + " |", "|---" * (len(results) + 1) + "|"]
    for name in LIBRARIES:
        lines.append(f"| {name} | " + " | ".join(r.versions.get(name, "–") for r in results) + " |")
    lines.append("| **result** | " + " | ".join(r.result for r in results) + " |")
    lines.append("| install time | " + " | ".join(minutes(r.install_seconds) for r in results) + " |")
    lines.append("| test time | " + " | ".join(minutes(r.test_seconds) for r in results) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # so run_logged ends its child
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started in the background (`&`, nohup): the children would inherit an ignored Ctrl-C, and
        # the suite tests what training does on one
        signal.signal(signal.SIGINT, signal.default_int_handler)
    dependencies = project_dependencies((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    try:
        constraints = {"lowest": lowest_constraints(dependencies, args.torch), "newest": newest_constraints(args.torch)}
    except ValueError as error:
        print(f"pyproject.toml: {error}", file=sys.stderr)
        return 2
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="ftcli-deps-"))).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    python = subprocess.run([args.python, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"{python}, torch {args.torch}, suite: {' '.join(pytest_command(Path('python'), args))}; in {args.workdir}",
          flush=True)
    results = []
    for end in args.ends:
        results.append(check_end(args, end, constraints[end]))
        if not args.keep:
            shutil.rmtree(args.workdir / end, ignore_errors=True)
    print(f"\n## Dependency check ({python}; logs in {args.workdir})\n\n" + "\n".join(table(results)), flush=True)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
