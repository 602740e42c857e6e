#!/usr/bin/env python3
"""Where creating a record goes: instructions per object created, by function.

Runs valgrind's callgrind (instruction counts, not wall time: the machine's load does not
change them) over the loop that bench_typed.py and bench_slotobj.py time,
``holder[i] = C(a, b, ...)`` over a holder of 256 (so each call also frees the object it
replaces), twice with different loop counts, and divides the difference by the number of
extra objects; so start-up and the loop's set-up cancel out.  The classes:

- ``reading-native``: issue 13's reading as a ``__slots__`` class with a Python
  ``__init__`` (floats boxed), created as ``C("s1", 1.5, 2.5, 7)``;
- ``reading-typed``: the same as a SlotObj with typed fields (``f64``, ``i64``);
- ``pair-native``: a 2-field ``__slots__`` class with a Python ``__init__``, ``C(a, b)``;
- ``pair-slotobj``: the same as a SlotObj.

SlotObj classes live in an Arena of their own, as in the benchmarks; the collectors are on
(CPython's and the arena's), as in a program.  Prints the total per kind and its ratio to
the native kind of the same record (both without the cost of the loop itself, the
``loop`` kind, which stores ``a0`` instead of creating), and the functions that take at least 1 instruction
per object (self cost: each instruction counted once, in the function that executes it).

Usage:  python benchmarks/profile_create.py [--top N] [--kinds K,K...]
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

PROGRAM = r"""
import sys
from objarena import Arena, SlotObj, f64, i64

class ReadingTyped(SlotObj, arena=Arena(name="profile-reading")):
    sensor: str
    t: f64
    value: f64 = 0.0
    count: i64 = 0

class ReadingNative:
    __slots__ = ("sensor", "t", "value", "count")
    def __init__(self, sensor, t, value=0.0, count=0):
        self.sensor = sensor
        self.t = t
        self.value = value
        self.count = count

class PairSlotObj(SlotObj, arena=Arena(name="profile-pair")):
    __slots__ = ("a", "b")

class PairNative:
    __slots__ = ("a", "b")
    def __init__(self, a, b):
        self.a = a
        self.b = b

def create4(holder, C, a0, a1, a2, a3):
    for i in range(len(holder)):
        holder[i] = C(a3, a0, a1, a2)

def create2(holder, C, a0, a1, a2, a3):
    for i in range(len(holder)):
        holder[i] = C(a0, a1)

def create_base(holder, C, a0, a1, a2, a3):
    for i in range(len(holder)):
        holder[i] = a0

kind = sys.argv[1]
cls, create = {"reading-native": (ReadingNative, create4),
               "reading-typed": (ReadingTyped, create4),
               "pair-native": (PairNative, create2),
               "pair-slotobj": (PairSlotObj, create2),
               "loop": (None, create_base)}[kind]
holder = [None] * 256
values = (1.5, 2.5, 7, "s1")
for _ in range(20):          # warm up: specialise (or give up specialising)
    create(holder, cls, *values)
for _ in range(int(sys.argv[2])):
    create(holder, cls, *values)
"""

KINDS = ("loop", "reading-native", "reading-typed", "pair-native", "pair-slotobj")
LOOPS = (20, 220)
OBJS_PER_LOOP = 256
FUNC = re.compile(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+):(\S+)")


def profile(kind, loops, workdir):
    out = os.path.join(workdir, f"cg.{kind}.{loops}")
    prog = os.path.join(workdir, "prog.py")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, prog, kind, str(loops)],
                   check=True, capture_output=True)
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", out],
                         check=True, capture_output=True, text=True).stdout
    costs = collections.Counter()
    for line in ann.splitlines():
        m = FUNC.match(line)
        if m:
            costs[m.group(3).split()[0]] += int(m.group(1).replace(",", ""))
    return costs


def per_object(kind, workdir):
    lo, hi = (profile(kind, n, workdir) for n in LOOPS)
    n_objs = (LOOPS[1] - LOOPS[0]) * OBJS_PER_LOOP
    return {f: (hi[f] - lo[f]) / n_objs for f in hi}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--kinds", default=",".join(KINDS))
    a = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        print("valgrind (callgrind) is not installed", file=sys.stderr)
        return 2
    kinds = [k for k in a.kinds.split(",") if k]
    print(f"Python {sys.version.split()[0]}: instructions per object created (callgrind)")
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "prog.py"), "w") as f:
            f.write(PROGRAM)
        per = {k: per_object(k, d) for k in kinds}
    tot = {k: sum(v for v in per[k].values() if v > 0) for k in kinds}
    # As the benchmarks do, the same loop storing a0 instead of creating is subtracted.
    base = tot.get("loop", 0.0)
    net = {k: tot[k] - base for k in kinds}
    for k in kinds:
        native = k.split("-")[0] + "-native"
        ratio = (f" ({net[k] / net[native]:.2f}x {native})"
                 if native in net and native != k else "")
        print(f"\n{k}: {tot[k]:.0f}, {net[k]:.0f} without the loop{ratio}")
        rows = sorted(((v, f) for f, v in per[k].items() if v >= 1), reverse=True)
        for v, f in rows[:a.top]:
            print(f"  {v:7.1f}  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
