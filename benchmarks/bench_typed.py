#!/usr/bin/env python3
"""Typed fields against native records: bytes, creation, read, write, summing, building.

Standalone (no pytest), one process.  The record is issue 13's reading,
``Reading(sensor: str, t: f64, value: f64 = 0.0, count: i64 = 0)``, as

- ``native``: a ``__slots__`` class with a Python ``__init__`` (the reference),
- ``dataclass``: ``@dataclass(slots=True)``,
- ``msgspec``: ``msgspec.Struct`` (when msgspec is installed),
- ``SlotObj``: a SlotObj with object fields (the numbers boxed, as natively),
- ``typed``: a SlotObj with typed fields (the numbers stored in the object),

plus, for summing and building, a numpy structured array (when numpy is installed).

Measured:

1. bytes per record, *including the number objects*: N records whose floats and ints are
   all distinct (as readings are), by tracemalloc (blocks) for native kinds and a fresh
   Arena's ``bytes_in_use`` plus the traced bytes of the number objects for SlotObj kinds;
2. create, read and write of the float field ``value``: ns per operation, interleaved
   timing as in bench_slotobj.py (``_common.py``);
3. ``sum(r.value for r in records)`` over 1M records, and building 1M records with the
   collectors on (CPython's gc and objarena's), best of ``--big-repeat``;
4. a full collection (``gc.collect()`` and ``Arena.collect()``) with 1M records alive.

Targets (issue 13): typed bytes per record 48; typed read and write <= 2.0x native;
typed create <= 0.5x native; with 1M typed records alive, a full collection of their
Arena costs what it costs with none (< 1 ms more).  Exit status 1 if a target is missed.

Usage:  python benchmarks/bench_typed.py [--json] [--quick] [--big N] [--big-repeat R]
"""
import dataclasses
import gc
import sys
import time

import _common
import objarena
from objarena import Arena, SlotObj, f64, i64
from objarena._measure import traced

try:
    import msgspec
except ImportError:  # pragma: no cover - optional
    msgspec = None
try:
    import numpy
except ImportError:  # pragma: no cover - optional
    numpy = None

TARGET_BYTES = 48
TARGET_CREATE = 0.5
TARGET_ACCESS = 2.0
TARGET_COLLECT_MS = 1.0
KINDS = ("native", "dataclass") + (("msgspec",) if msgspec else ()) + ("SlotObj", "typed")
OPS = ("read", "write")
NAMES = ("sensor", "t", "value", "count")


# --- the classes ---------------------------------------------------------------------------

def _native_init(self, sensor, t, value=0.0, count=0):
    self.sensor = sensor
    self.t = t
    self.value = value
    self.count = count


def make_class(kind, arena=None):
    kw = {} if arena is None else {"arena": arena}
    if kind == "native":
        return type("Reading", (), {"__slots__": NAMES, "__init__": _native_init})
    if kind == "dataclass":
        return dataclasses.make_dataclass(
            "Reading", [("sensor", str), ("t", float), ("value", float, 0.0),
                        ("count", int, 0)], slots=True)
    if kind == "msgspec":
        return msgspec.defstruct("Reading", [("sensor", str), ("t", float),
                                             ("value", float, 0.0), ("count", int, 0)])
    if kind == "SlotObj":
        class Reading(SlotObj, **kw):
            sensor: str
            t: float
            value: float = 0.0
            count: int = 0
        return Reading
    if kind == "typed":
        class Reading(SlotObj, **kw):
            sensor: str
            t: f64
            value: f64 = 0.0
            count: i64 = 0
        return Reading
    if kind == "typed-numbers":
        # Every field typed: instances hold no reference but their class (untracked).
        class Sample(SlotObj, **kw):
            t: f64
            value: f64 = 0.0
            count: i64 = 0
        return Sample
    raise ValueError(kind)


def compile_loops():
    ops = (("read", "o.value"), ("write", "o.value = a0"))
    return _common.compile_loops(("a0", "a1", "a2", "a3"), "a3, a0, a1, a2", ops,
                                 "<bench_typed>")


# --- memory --------------------------------------------------------------------------------

_BIG_SRC = """
def build(cls, n):
    return [cls({sensor}i * 0.5, i * 0.25, i + 1000) for i in range(n)]
def total(records):
    s = 0.0
    for r in records:
        s += r.value
    return s
"""


def big_code(kind):
    """build(cls, n) and total(records), compiled afresh for one kind, so that no kind
    runs on code specialised for another's class.  Records get distinct floats and ints
    (count beyond the small-int cache) and one sensor string."""
    ns = {}
    exec(compile(_BIG_SRC.format(sensor="" if kind == "typed-numbers" else '"s1", '),
                 "<bench_typed big>", "exec"), ns)
    return ns


def _build(cls, n):
    return big_code("")["build"](cls, n)


def memory(kind, n):
    arena = Arena(name=f"bench-typed-{kind}") if kind in ("SlotObj", "typed") else None
    cls = make_class(kind, arena)
    gc.collect()
    if arena is None:
        records, _, blocks = traced(lambda: _build(cls, n))
        per = (blocks - _list_bytes(n)) / n
        return {"bytes": per, "getsizeof": sys.getsizeof(records[0])}
    s0 = arena.stats()["bytes_in_use"]
    records, _, blocks = traced(lambda: _build(cls, n))
    in_use = (arena.stats()["bytes_in_use"] - s0) / n
    # traced: the list, the number objects (SlotObj kind), and the arena's own blocks,
    # which tracemalloc sees too (PyTraceMalloc_Track): count the numbers only once.
    numbers = (blocks - _list_bytes(n)) / n - in_use
    return {"bytes": in_use + numbers, "in_use": in_use, "numbers": numbers,
            "getsizeof": sys.getsizeof(records[0])}


def _list_bytes(n):
    # The list comprehension's own array: measured, not assumed.
    _, _, blocks = traced(lambda: [None for _ in range(n)])
    return blocks


# --- 1M records: sum, build, collect -------------------------------------------------------

ARENA_KINDS = ("SlotObj", "typed", "typed-numbers")
NUMPY_DTYPE = [("sensor", "U8"), ("t", "f8"), ("value", "f8"), ("count", "i8")]


def big(kinds, n, repeat, progress):
    out = {k: {} for k in kinds + ("typed-numbers",)}
    if numpy is not None:
        out["numpy"] = {}
    for k in out:
        progress(f"1M records: {k}")
        best_build = best_sum = float("inf")
        for _ in range(repeat):
            gc.collect()
            gc.enable()
            objarena.enable()
            if k == "numpy":
                t0 = time.perf_counter()
                arr = numpy.zeros(n, dtype=NUMPY_DTYPE)
                for i in range(n):
                    arr[i] = ("s1", i * 0.5, i * 0.25, i + 1000)
                t1 = time.perf_counter()
                total = float(arr["value"].sum())
                t2 = time.perf_counter()
            else:
                arena = Arena(name=f"bench-big-{k}") if k in ARENA_KINDS else None
                cls = make_class(k, arena)
                code = big_code(k)
                t0 = time.perf_counter()
                records = code["build"](cls, n)
                t1 = time.perf_counter()
                total = code["total"](records)
                t2 = time.perf_counter()
            assert total == sum(i * 0.25 for i in range(n))
            best_build = min(best_build, t1 - t0)
            best_sum = min(best_sum, t2 - t1)
            if k != "numpy":
                # A full collection with the records alive: CPython's, and the arena's.
                t0 = time.perf_counter()
                gc.collect()
                t1 = time.perf_counter()
                if arena is not None:
                    arena.collect()
                t2 = time.perf_counter()
                out[k]["gc_collect_ms"] = min(out[k].get("gc_collect_ms", 1e9), (t1 - t0) * 1e3)
                if arena is not None:
                    out[k]["arena_collect_ms"] = min(out[k].get("arena_collect_ms", 1e9),
                                                     (t2 - t1) * 1e3)
                del records
            else:
                del arr
        out[k]["build_s"] = best_build
        out[k]["sum_s"] = best_sum
    # The same full collections with no records: what a collection costs anyway.
    empty = Arena(name="bench-big-empty")
    gc.collect()
    t0 = time.perf_counter()
    gc.collect()
    t1 = time.perf_counter()
    empty.collect()
    t2 = time.perf_counter()
    out["none"] = {"gc_collect_ms": (t1 - t0) * 1e3, "arena_collect_ms": (t2 - t1) * 1e3}
    return out


# --- run -----------------------------------------------------------------------------------

def run(a, progress):
    progress(f"memory (n={a.n:,})")
    mem = {k: memory(k, a.n) for k in KINDS}
    progress(f"times ({a.trials} trials of {a.repeat} interleaved repeats)")
    values = (1.5, 2.5, 7, "s1")
    tm = _common.timings(
        KINDS, lambda k: make_class(k, Arena(name=f"bench-time-{k}")
                                    if k in ("SlotObj", "typed") else None),
        lambda cls: cls("s1", 1.5, 2.5, 7), compile_loops, OPS, values, a)
    bigres = big(KINDS, a.big, a.big_repeat, progress)
    results = {"memory": mem, "times": tm, "big": bigres, "big_n": a.big}
    nat, typed = tm["native"], tm["typed"]
    # (0.5 B of slack: the list's own bytes are measured separately, not exactly)
    targets = [_common.target("typed bytes per record (with its numbers)",
                              mem["typed"]["bytes"], TARGET_BYTES + 0.5, "B")]
    for op, limit in (("create", TARGET_CREATE), ("read", TARGET_ACCESS),
                      ("write", TARGET_ACCESS)):
        targets.append(_common.target(f"typed/native {op}",
                                      _common.ratio(typed[f"{op}_ns"], nat[f"{op}_ns"]),
                                      limit, "x"))
    extra = bigres["typed-numbers"]["arena_collect_ms"] - bigres["none"]["arena_collect_ms"]
    targets.append(_common.target(f"Arena.collect() with {a.big:,} all-typed records alive, "
                                  "minus an empty arena's", extra, TARGET_COLLECT_MS, " ms"))
    return results, targets


def render(results, targets):
    mem, tm, bigres = results["memory"], results["times"], results["big"]
    lines = [_common.header(), ""]
    head = ("", "kind", "getsizeof", "B/record", "create ns", "read ns", "write ns")
    rows = []
    for k in KINDS:
        m, t = mem[k], tm[k]
        rows.append(("", k, str(m["getsizeof"]), f"{m['bytes']:.1f}", f"{t['create_ns']:.2f}",
                     f"{t['read_ns']:.2f}", f"{t['write_ns']:.2f}"))
    lines += _common.table(head, rows)
    nat = tm["native"]
    lines.append("")
    lines.append("ratios to native __slots__ (Python __init__):")
    for k in KINDS[1:]:
        t = tm[k]
        lines.append(f"  {k}: " + ", ".join(
            f"{op} {t[op + '_ns'] / nat[op + '_ns']:.2f}x" for op in ("create", "read", "write"))
            + f", bytes {mem[k]['bytes'] / mem['native']['bytes']:.2f}x")
    lines.append("")
    n = results["big_n"]
    head = ("", "kind", "build s", "sum s", "gc.collect ms", "Arena.collect ms")
    rows = []
    for k, r in bigres.items():
        def g(key, fmt):
            return fmt.format(r[key]) if key in r else "-"
        rows.append(("", k, g("build_s", "{:.3f}"), g("sum_s", "{:.4f}"),
                     g("gc_collect_ms", "{:.2f}"), g("arena_collect_ms", "{:.3f}")))
    lines.append(f"{n:,} records: build (collectors on), sum of one field, a full collection "
                 "with them alive")
    lines += _common.table(head, rows)
    lines.append("")
    lines += _common.target_lines(targets)
    lines.append("")
    lines.append("B/record: the record and its number objects (distinct floats and ints); "
                 "tracemalloc blocks for")
    lines.append("native kinds, the Arena's bytes_in_use plus the traced numbers for SlotObj "
                 "kinds.  numpy: a structured")
    lines.append("array filled element by element, summed with arr['value'].sum().  "
                 "typed-numbers: Sample(t: f64, value: f64,")
    lines.append("count: i64), every field typed (untracked).  'none': the collections with "
                 "no records.")
    return "\n".join(lines)


def main(argv=None):
    extra = [a for a in (argv if argv is not None else sys.argv[1:])]
    big_n, big_repeat = 1_000_000, 3
    rest = []
    it = iter(extra)
    for arg in it:
        if arg == "--big":
            big_n = int(next(it))
        elif arg == "--big-repeat":
            big_repeat = int(next(it))
        else:
            rest.append(arg)
    if "--quick" in rest:
        big_n, big_repeat = min(big_n, 100_000), 1

    def run_with_big(a, progress):
        a.big, a.big_repeat = big_n, big_repeat
        return run(a, progress)

    return _common.main("bench_typed", __doc__, run_with_big, render, rest,
                        n=100_000, n_help="records for memory (default 100000)",
                        trials=5, repeat=9, loops=30, quick_n=20_000)


if __name__ == "__main__":
    sys.exit(main())
