"""`scripts/check_deps.py`'s pure parts: the dependency list it reads and the constraints it writes.

Building the venvs is the script's own job (minutes and GB), not the suite's; these check what
decides which versions it installs, and that pyproject.toml keeps to the policy the script tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("check_deps", ROOT / "scripts" / "check_deps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_deps", module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


check_deps = load_script()
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
FAST_MOVING = ("torch", "transformers", "peft", "accelerate", "datasets", "evaluate")


def test_a_requirement_splits_into_name_bounds_and_marker():
    requirement = check_deps.parse_requirement("Scikit_Learn[extra] >=1.4.2, <2 ; python_version < '3.12'")
    assert requirement.name == "scikit-learn"
    assert requirement.specifiers == [(">=", "1.4.2"), ("<", "2")]
    assert requirement.marker == "python_version < '3.12'"
    assert requirement.lower == "1.4.2"
    assert check_deps.parse_requirement("rich~=13.0").lower == "13.0"
    assert check_deps.parse_requirement("rich<14").lower is None


def test_lowest_constraints_pin_every_lower_bound_and_torch_to_the_installed_build():
    deps = ["torch>=2.13,<2.15", "transformers>=5.0,<5.25", "numpy>=2; python_version >= '3.11'"]
    assert check_deps.lowest_constraints(deps, "2.14.1") == [
        "torch==2.14.1", "transformers==5.0", "numpy==2; python_version >= '3.11'"]
    assert check_deps.lowest_constraints(["rich>=13"], "2.13.0") == ["rich==13", "torch==2.13.0"]
    with pytest.raises(ValueError, match="rich<14"):
        check_deps.lowest_constraints(["rich<14"], "2.13.0")


def test_the_parser_without_tomllib_reads_the_same_list():
    text = '[build-system]\nrequires = ["x"]\n\n[project]\nname = "p"\ndependencies = [\n' \
           '    # a comment, "quoted"\n    "a>=1,<2",  # why\n    \'b[c]>=3\',\n]\n\n[tool.x]\ndependencies = ["no"]\n'
    assert check_deps._dependencies_without_tomllib(text) == ["a>=1,<2", "b[c]>=3"]
    assert check_deps._dependencies_without_tomllib(PYPROJECT) == check_deps.project_dependencies(PYPROJECT)


def test_pyproject_bounds_every_dependency_below_and_the_fast_moving_ones_above():
    requirements = {r.name: r for r in map(check_deps.parse_requirement, check_deps.project_dependencies(PYPROJECT))}
    assert all(r.lower for r in requirements.values()), [n for n, r in requirements.items() if not r.lower]
    for name in FAST_MOVING:
        assert any(op in ("<", "<=") for op, _ in requirements[name].specifiers), name


def test_the_pytest_summary_line_becomes_the_result():
    assert check_deps.summarise(0, "816 passed, 10 deselected, 3 warnings in 412.5s (0:06:52)") == (
        True, "passed: 816 passed, 10 deselected")
    assert check_deps.summarise(1, "1 failed, 563 passed in 2.0s") == (False, "FAILED (exit 1): 1 failed, 563 passed")
