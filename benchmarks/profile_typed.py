#!/usr/bin/env python3
"""Where a typed field's read and write go: instructions per operation, by function.

Runs valgrind's callgrind (instruction counts, not wall time: the machine's load does not
change them) over a loop that reads (or writes) the float field of 256 records, twice
with different loop counts, and divides the difference by the number of extra
operations; so start-up and the loop's set-up cancel out.  For a native ``__slots__``
record, a typed SlotObj record and, where the running CPython has ``_testcapi``, a
field of CPython's own typed member descriptor (a ``PyMemberDef`` of type
``Py_T_DOUBLE``, the ``T_DOUBLE`` member of ``_testcapi._test_structmembersType_NewAPI``,
``_test_structmembersType`` on 3.11):
the floor the interpreter's generic member path sets for any C-level number field.
Prints the functions that take at least 2 instructions per operation.

Usage:  python benchmarks/profile_typed.py [--top N]
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
from objarena import SlotObj, f64, i64

class Typed(SlotObj):
    sensor: str
    t: f64
    value: f64 = 0.0
    count: i64 = 0

class Native:
    __slots__ = ("sensor", "t", "value", "count")
    def __init__(self, sensor, t, value=0.0, count=0):
        self.sensor = sensor; self.t = t; self.value = value; self.count = count

def read(objs, a):
    for o in objs:
        o.ATTR; o.ATTR; o.ATTR; o.ATTR; o.ATTR; o.ATTR; o.ATTR; o.ATTR

def write(objs, a):
    for o in objs:
        o.ATTR = a; o.ATTR = a; o.ATTR = a; o.ATTR = a
        o.ATTR = a; o.ATTR = a; o.ATTR = a; o.ATTR = a

op = read if sys.argv[2] == "read" else write
if sys.argv[1] == "member":
    import _testcapi
    member_type = getattr(_testcapi, "_test_structmembersType_NewAPI", None) \
        or _testcapi._test_structmembersType
    objs = [member_type() for _ in range(256)]
else:
    cls = Typed if sys.argv[1] == "typed" else Native
    objs = [cls("s", 1.0) for _ in range(256)]
for _ in range(20):          # warm up: specialise (or give up specialising)
    op(objs, 2.5)
for _ in range(int(sys.argv[3])):
    op(objs, 2.5)
"""

LOOPS = (20, 120)
OPS_PER_LOOP = 256 * 8


KINDS = {"native": "value", "typed": "value", "member": "T_DOUBLE"}


def has_testcapi():
    try:
        import _testcapi
        return any(hasattr(_testcapi, n) for n in ("_test_structmembersType_NewAPI",
                                                    "_test_structmembersType"))
    except ImportError:
        return False


def profile(kind, op, loops, workdir):
    out = os.path.join(workdir, f"cg.{kind}.{op}.{loops}")
    prog = os.path.join(workdir, f"prog_{kind}.py")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, prog, kind, op, str(loops)],
                   check=True, capture_output=True)
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", out],
                         check=True, capture_output=True, text=True).stdout
    costs = collections.Counter()
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+):(\S+)", line)
        if m:
            func = m.group(3).split()[0]
            costs[func] += int(m.group(1).replace(",", ""))
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--top", type=int, default=14)
    a = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        print("valgrind (callgrind) is not installed", file=sys.stderr)
        return 2
    print(f"Python {sys.version.split()[0]}: instructions per operation (callgrind)")
    with tempfile.TemporaryDirectory() as d:
        kinds = [k for k in KINDS if k != "member" or has_testcapi()]
        for kind in kinds:
            with open(os.path.join(d, f"prog_{kind}.py"), "w") as f:
                f.write(PROGRAM.replace("ATTR", KINDS[kind]))
        for op in ("read", "write"):
            per = {}
            for kind in kinds:
                lo, hi = (profile(kind, op, n, d) for n in LOOPS)
                n_ops = (LOOPS[1] - LOOPS[0]) * OPS_PER_LOOP
                per[kind] = {f: (hi[f] - lo[f]) / n_ops for f in hi}
            tot = {k: sum(v for v in per[k].values() if v > 0) for k in per}
            print(f"\n{op}: instructions per operation: "
                  + ", ".join(f"{k} {tot[k]:.0f} ({tot[k] / tot['native']:.2f}x)" for k in kinds))
            for kind in kinds:
                rows = sorted(((v, f) for f, v in per[kind].items() if v >= 2), reverse=True)
                print(f"  {kind}:")
                for v, f in rows[:a.top]:
                    print(f"    {v:7.1f}  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
