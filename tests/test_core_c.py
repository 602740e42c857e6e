"""Build and run the allocator core's own C tests (csrc/tests/*.c).

The core does not include Python.h, so its tests are plain C programs linked
with csrc/arena.c alone.  The sanitizer stage of .ci/run builds the same
programs with -fsanitize=address,undefined.
"""
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[1] / "csrc"
C_TESTS = sorted((CSRC / "tests").glob("test_*.c"))


def _compiler():
    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(_compiler() is None, reason="no C compiler on this machine")
@pytest.mark.parametrize("source", C_TESTS, ids=lambda p: p.stem)
def test_core_c_program(source, tmp_path):
    exe = tmp_path / source.stem
    build = subprocess.run(
        [_compiler(), "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
         "-o", str(exe), str(source), str(CSRC / "arena.c")],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout


def test_c_tests_exist():
    assert C_TESTS, "csrc/tests/ holds no test_*.c"
