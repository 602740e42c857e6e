"""Proof that AddressSanitizer sees arena memory.

The arena poisons every byte it is not handing out (free blocks, unused pages),
so reading a freed arena object is reported like a use after free of malloc'd
memory.  These tests run only in the sanitizer stage of .ci/run, where the ASan
runtime is preloaded; elsewhere they are skipped.
"""
import os
import subprocess
import sys
import textwrap

import pytest

ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

pytestmark = pytest.mark.skipif(not ASAN, reason="needs the ASan runtime preloaded")

READ_FREED = textwrap.dedent(
    """
    import ctypes
    from objarena import SlotObj, Arena
    arena = Arena("uaf")
    class Node(SlotObj, arena=arena):
        __slots__ = ("a", "b")
    keep = [Node(i, i) for i in range(10)]   # the page stays in use
    victim = Node(1, 2)
    address = id(victim)
    del victim                               # back on the page's free list
    ctypes.string_at(address + 16, 8)        # read a field of the freed object
    print("not reported")
    """
)

READ_LIVE = READ_FREED.replace("del victim", "pass")


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_reading_a_freed_arena_object_is_reported():
    proc = run(READ_FREED)
    assert proc.returncode != 0
    assert "AddressSanitizer" in proc.stderr
    assert "use-after-poison" in proc.stderr or "use-after-free" in proc.stderr
    assert "not reported" not in proc.stdout


def test_reading_a_live_arena_object_is_not_reported():
    # The control: the same read of a live object is clean.
    proc = run(READ_LIVE)
    assert proc.returncode == 0, proc.stderr
    assert "not reported" in proc.stdout
