#!/usr/bin/env python3
"""SlotObj against native records: true bytes, creation, attribute read and write.

Standalone (no pytest), one process.  For 2 and 5 fields it measures

- a native ``__slots__`` class with a Python ``__init__`` (the reference),
- ``@dataclass(slots=True)``,
- an ``objarena.SlotObj`` subclass,

and checks the targets of the foundation issue:

- SlotObj bytes per instance, by a fresh Arena's ``bytes_in_use`` / N:
  32 B at 2 fields, 56 B at 5 (``bytes_reserved`` / N is reported beside it);
- creation <= 0.5x the native ``__slots__`` class with a Python ``__init__``;
- attribute read and write <= 1.05x the native ``__slots__`` class.

Exit status 1 if a target is missed.

Method.  Memory: N instances built into a list allocated beforehand, with small-int field
values (shared, so they cost nothing); native: tracemalloc, each trace rounded up to its
obmalloc block ("blocks") and the raw traced bytes ("requested"); SlotObj: the change of a
fresh Arena's stats().  Times: timeit-style; each sample calls a generated loop over a list
of 256 instances ``--loops`` times; within a trial the kinds run interleaved inside every
repeat (so that slow drifts of the machine hit them alike) and the best of ``--repeat``
samples is kept; each of ``--trials`` trials uses fresh code objects and instances at other
addresses, and the median over trials is reported (so that one lucky or unlucky memory
layout does not decide a ratio); see ``_common.py``.  gc is disabled while timing (as timeit does), and the
cost of the same loop without the operation is subtracted.  Read and write loops do 16
accesses per iteration; creation is ``C(a0, a1, ...)`` with positional arguments.

Usage:  python benchmarks/bench_slotobj.py [--json] [--repeat R] [--n N] [--quick]
"""
import dataclasses
import gc
import sys
import types

import _common
import objarena
from objarena import Arena, SlotObj
from objarena._measure import traced

FIELD_COUNTS = (2, 5)
TARGET_BYTES = {2: 32, 5: 56}
TARGET_CREATE = 0.5
TARGET_ACCESS = 1.05
KINDS = ("native", "dataclass", "SlotObj")
OPS = ("read", "write")


# --- the classes ---------------------------------------------------------------------------

def make_class(kind, names, arena=None):
    if kind == "native":
        return type("Native", (), {"__slots__": names, "__init__": _common.generated_init(names)})
    if kind == "dataclass":
        return dataclasses.make_dataclass("DataSlots", names, slots=True)
    if kind == "SlotObj":
        kw = {} if arena is None else {"arena": arena}
        return types.new_class("Arena", (SlotObj,), kw,
                               lambda ns: ns.__setitem__("__slots__", names))
    raise ValueError(kind)


def compile_loops(names):
    args = ", ".join(f"a{i}" for i in range(len(names)))
    ops = (("read", f"o.{names[-1]}"), ("write", f"o.{names[0]} = a0"))
    return _common.compile_loops(names, args, ops, "<bench_slotobj>")


# --- memory --------------------------------------------------------------------------------

def memory(kind, names, n):
    values = tuple(range(len(names)))
    arena = Arena(name=f"bench-{kind}") if kind == "SlotObj" else None
    cls = make_class(kind, names, arena)
    create = compile_loops(names)["create"]
    holder = [None] * n
    gc.collect()
    out = {"getsizeof": None}
    if arena is not None:
        s0 = arena.stats()
        create(holder, cls, *values)
        s1 = arena.stats()
        out["bytes_in_use"] = (s1["bytes_in_use"] - s0["bytes_in_use"]) / n
        out["bytes_reserved"] = (s1["bytes_reserved"] - s0["bytes_reserved"]) / n
        out["footprint"] = objarena.footprint(holder[0])
        holder = None
        gc.collect()
    # tracemalloc, for every kind (for SlotObj: what the arena reports to tracemalloc)
    holder = [None] * n
    cls = make_class(kind, names, Arena(name="bench-traced") if arena is not None else None)
    _, requested, blocks = traced(lambda: create(holder, cls, *values))
    out["traced_requested"] = requested / n
    out["traced_blocks"] = blocks / n
    out["getsizeof"] = sys.getsizeof(holder[0])
    holder = None
    gc.collect()
    return out


# --- run -----------------------------------------------------------------------------------

def run(a, progress):
    results, targets = [], []
    for f in FIELD_COUNTS:
        names = tuple(f"f{i}" for i in range(f))
        values = tuple(range(f))
        progress(f"{f} fields: memory (n={a.n:,})")
        mem = {k: memory(k, names, a.n) for k in KINDS}
        progress(f"{f} fields: times ({a.trials} trials of {a.repeat} interleaved repeats)")
        tm = _common.timings(
            KINDS, lambda k: make_class(k, names, Arena(name=f"bench-time-{k}")
                                        if k == "SlotObj" else None),
            lambda cls: cls(*values), lambda: compile_loops(names), OPS, values, a)
        for k in KINDS:
            results.append({"fields": f, "kind": k, **mem[k], **tm[k]})
        nat, arena = tm["native"], tm["SlotObj"]
        in_use = mem["SlotObj"]["bytes_in_use"]
        targets.append(_common.target(f"SlotObj bytes_in_use/N, {f} fields", in_use,
                                      TARGET_BYTES[f], "B"))
        for op, limit in (("create", TARGET_CREATE), ("read", TARGET_ACCESS),
                          ("write", TARGET_ACCESS)):
            ratio = _common.ratio(arena[f"{op}_ns"], nat[f"{op}_ns"])
            targets.append(_common.target(f"SlotObj/native {op}, {f} fields", ratio, limit, "x"))
    return results, targets


def render(results, targets):
    lines = [_common.header(), ""]
    head = ("fields", "kind", "getsizeof", "in use B", "reserved B", "traced B", "blocks B",
            "create ns", "read ns", "write ns")
    rows = []
    for r in results:
        def g(key, fmt="{:.1f}"):
            v = r.get(key)
            return "-" if v is None else fmt.format(v)
        rows.append((str(r["fields"]), r["kind"], g("getsizeof", "{}"), g("bytes_in_use"),
                     g("bytes_reserved"), g("traced_requested"), g("traced_blocks"),
                     g("create_ns", "{:.2f}"), g("read_ns", "{:.2f}"), g("write_ns", "{:.2f}")))
    lines += _common.table(head, rows)
    lines.append("")
    lines.append("ratios SlotObj / native __slots__ (Python __init__), and dataclass(slots=True) / native:")
    by = {(r["fields"], r["kind"]): r for r in results}
    for f in FIELD_COUNTS:
        nat = by[f, "native"]
        parts = []
        for k in ("SlotObj", "dataclass"):
            r = by[f, k]
            ratios = ", ".join(f"{op} {r[op + '_ns'] / nat[op + '_ns']:.2f}x"
                               for op in ("create", "read", "write") if nat[op + "_ns"] > 0)
            parts.append(f"{k}: {ratios}")
        nat_b = nat["traced_blocks"]
        parts.append(f"bytes SlotObj in_use/native blocks {by[f, 'SlotObj']['bytes_in_use'] / nat_b:.2f}x")
        lines.append(f"  {f} fields: " + "; ".join(parts))
    lines.append("")
    lines += _common.target_lines(targets)
    lines.append("")
    lines.append("in use B: SlotObj: growth of a fresh Arena's bytes_in_use / N.  reserved B: "
                 "growth of bytes_reserved / N")
    lines.append("(whole 1 MiB chunks).  traced B: tracemalloc traced-memory growth / N; "
                 "blocks B: the same traces")
    lines.append("rounded up to obmalloc's 16-byte blocks (native), as reported (SlotObj).  "
                 "Times: ns per operation,")
    lines.append("median over trials of the best interleaved repeat, gc disabled, empty-loop cost subtracted.")
    return "\n".join(lines)


def main(argv=None):
    return _common.main("bench_slotobj", __doc__, run, render, argv,
                        n=100_000, n_help="instances for memory (default 100000)",
                        trials=7, repeat=15, loops=50, quick_n=20_000)


if __name__ == "__main__":
    sys.exit(main())
