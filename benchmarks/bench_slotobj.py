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
layout does not decide a ratio).  gc is disabled while timing (as timeit does), and the
cost of the same loop without the operation is subtracted.  Read and write loops do 16
accesses per iteration; creation is ``C(a0, a1, ...)`` with positional arguments.

Usage:  python benchmarks/bench_slotobj.py [--json] [--repeat R] [--n N] [--quick]
"""
import argparse
import dataclasses
import gc
import json
import statistics
import sys
import time
import tracemalloc

import objarena
from objarena import Arena, SlotObj

FIELD_COUNTS = (2, 5)
TARGET_BYTES = {2: 32, 5: 56}
TARGET_CREATE = 0.5
TARGET_ACCESS = 1.05
UNROLL = 16
KINDS = ("native", "dataclass", "SlotObj")


# --- the classes ---------------------------------------------------------------------------

def _init(names):
    src = f"def __init__(self, {', '.join(names)}):\n"
    src += "".join(f"    self.{f} = {f}\n" for f in names)
    ns = {}
    exec(src, ns)
    return ns["__init__"]


def make_class(kind, names, arena=None):
    if kind == "native":
        return type("Native", (), {"__slots__": names, "__init__": _init(names)})
    if kind == "dataclass":
        return dataclasses.make_dataclass("DataSlots", names, slots=True)
    if kind == "SlotObj":
        import types

        kw = {} if arena is None else {"arena": arena}
        return types.new_class("Arena", (SlotObj,), kw,
                               lambda ns: ns.__setitem__("__slots__", names))
    raise ValueError(kind)


def compile_loops(names):
    args = ", ".join(f"a{i}" for i in range(len(names)))
    rd = "; ".join([f"o.{names[-1]}"] * UNROLL)
    wr = "; ".join([f"o.{names[0]} = a0"] * UNROLL)
    src = (
        f"def create(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = C({args})\n"
        f"def create_base(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = a0\n"
        f"def read(objs):\n"
        f"    for o in objs:\n"
        f"        {rd}\n"
        f"def write(objs, a0):\n"
        f"    for o in objs:\n"
        f"        {wr}\n"
        f"def loop(objs, a0):\n"
        f"    for o in objs:\n"
        f"        pass\n"
    )
    ns = {}
    exec(compile(src, "<bench_slotobj>", "exec"), ns)
    return ns


# --- memory --------------------------------------------------------------------------------

def _block(size):
    if size <= 512:
        return (size + 15) & -16
    return max(32, (size + 8 + 15) & -16)


def _blocks(snapshot):
    return sum(_block(t.size) if t.domain == 0 else t.size for t in snapshot.traces)


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
        del holder
        gc.collect()
    # tracemalloc, for every kind (for SlotObj: what the arena reports to tracemalloc)
    holder = [None] * n
    cls = make_class(kind, names, Arena(name="bench-traced") if arena is not None else None)
    tracemalloc.start()
    try:
        b0 = _blocks(tracemalloc.take_snapshot())
        r0 = tracemalloc.get_traced_memory()[0]
        create(holder, cls, *values)
        r1 = tracemalloc.get_traced_memory()[0]
        b1 = _blocks(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    out["traced_requested"] = (r1 - r0) / n
    out["traced_blocks"] = (b1 - b0) / n
    out["getsizeof"] = sys.getsizeof(holder[0])
    del holder
    gc.collect()
    return out


# --- time ----------------------------------------------------------------------------------

def _sample(fn, args, loops):
    t0 = time.perf_counter_ns()
    for _ in range(loops):
        fn(*args)
    return (time.perf_counter_ns() - t0) / loops


def _trial(names, n_objs, repeat, loops, shift):
    """One trial: fresh code objects and instances, best-of-repeat ns per run and kind."""
    values = tuple(range(len(names)))
    # One copy of the loops per kind: a shared code object would have its attribute
    # instructions specialised for one type and deoptimised by the next (3.11+).
    code = {k: compile_loops(names) for k in KINDS}
    classes = {k: make_class(k, names, Arena(name=f"bench-time-{k}") if k == "SlotObj" else None)
               for k in KINDS}
    # `shift` instances made first move the measured ones to other addresses (cache sets,
    # 4 KiB aliasing), so that no kind keeps one lucky or unlucky layout in every trial.
    pads = {k: [classes[k](*values) for _ in range(shift)] for k in KINDS}
    objs = {k: [classes[k](*values) for _ in range(n_objs)] for k in KINDS}
    holders = {k: [None] * n_objs for k in KINDS}
    best = {}
    for _ in range(repeat):
        for k in KINDS:
            c, h, o, fns = classes[k], holders[k], objs[k], code[k]
            runs = (
                ("create_base", fns["create_base"], (h, c) + values),
                ("create", fns["create"], (h, c) + values),
                ("loop", fns["loop"], (o, 0)),
                ("read", fns["read"], (o,)),
                ("write", fns["write"], (o, 0)),
            )
            for op, fn, args in runs:
                t = _sample(fn, args, loops)
                if t < best.get((k, op), float("inf")):
                    best[k, op] = t
    del pads
    out = {}
    for k in KINDS:
        out[k] = {
            "create_ns": (best[k, "create"] - best[k, "create_base"]) / n_objs,
            "create_loop_ns": best[k, "create_base"] / n_objs,
            "read_ns": (best[k, "read"] - best[k, "loop"]) / (n_objs * UNROLL),
            "write_ns": (best[k, "write"] - best[k, "loop"]) / (n_objs * UNROLL),
            "loop_ns": best[k, "loop"] / n_objs,
        }
    return out


def timings(names, n_objs, repeat, loops, trials):
    """ns per operation for every kind: the median over `trials` of best-of-`repeat`.

    Inside a trial the kinds run interleaved, so that slow drifts of the machine hit them
    alike; every trial uses fresh code objects and instances at other addresses, and the
    median over trials keeps a layout accident from deciding a ratio.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        per_trial = [_trial(names, n_objs, repeat, loops, shift=7 * t + 1) for t in range(trials)]
    finally:
        if was_enabled:
            gc.enable()
    out = {}
    for k in KINDS:
        out[k] = {key: statistics.median(t[k][key] for t in per_trial) for key in per_trial[0][k]}
    return out


# --- run -----------------------------------------------------------------------------------

def run(n_mem, n_objs, repeat, loops, trials, progress):
    results, targets = [], []
    for f in FIELD_COUNTS:
        names = tuple(f"f{i}" for i in range(f))
        progress(f"{f} fields: memory (n={n_mem:,})")
        mem = {k: memory(k, names, n_mem) for k in KINDS}
        progress(f"{f} fields: times ({trials} trials of {repeat} interleaved repeats)")
        tm = timings(names, n_objs, repeat, loops, trials)
        for k in KINDS:
            results.append({"fields": f, "kind": k, **mem[k], **tm[k]})
        nat, arena = tm["native"], tm["SlotObj"]
        in_use = mem["SlotObj"]["bytes_in_use"]
        targets.append(_target(f"SlotObj bytes_in_use/N, {f} fields", in_use, TARGET_BYTES[f], "B"))
        for op, limit in (("create", TARGET_CREATE), ("read", TARGET_ACCESS),
                          ("write", TARGET_ACCESS)):
            ratio = arena[f"{op}_ns"] / nat[f"{op}_ns"] if nat[f"{op}_ns"] > 0 else float("inf")
            targets.append(_target(f"SlotObj/native {op}, {f} fields", ratio, limit, "x"))
    return results, targets


def _target(name, value, limit, unit):
    return {"name": name, "value": value, "limit": limit, "unit": unit, "ok": value <= limit}


def render(results, targets):
    lines = [f"objarena {objarena.__version__} on {sys.version.split()[0]} "
             f"({sys.implementation.name}, {sys.platform})", ""]
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
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines.append("  ".join(h.rjust(w[i]) if i != 1 else h.ljust(w[i]) for i, h in enumerate(head)))
    for r in rows:
        lines.append("  ".join(c.rjust(w[i]) if i != 1 else c.ljust(w[i]) for i, c in enumerate(r)))
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
    lines.append("targets:")
    for t in targets:
        lines.append(f"  [{'ok' if t['ok'] else 'MISSED'}] {t['name']}: "
                     f"{t['value']:.3g}{t['unit']} (limit {t['limit']}{t['unit']})")
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    ap.add_argument("--n", type=int, default=100_000, help="instances for memory (default 100000)")
    ap.add_argument("--objs", type=int, default=256,
                    help="instances per timing loop (default 256: they stay in L1 cache)")
    ap.add_argument("--trials", type=int, default=7,
                    help="independent trials; the median is reported (default 7)")
    ap.add_argument("--repeat", type=int, default=15,
                    help="interleaved repeats per trial; the best is kept (default 15)")
    ap.add_argument("--loops", type=int, default=50, help="loop calls per sample (default 50)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    a = ap.parse_args(argv)
    if min(a.n, a.objs, a.trials, a.repeat, a.loops) < 1:
        ap.error("--n, --objs, --trials, --repeat and --loops must be >= 1")
    if a.quick:
        a.trials, a.repeat, a.loops, a.n = 3, 3, 5, min(a.n, 20_000)

    def progress(msg):
        print(f"bench_slotobj: {msg}", file=sys.stderr, flush=True)

    results, targets = run(a.n, a.objs, a.repeat, a.loops, a.trials, progress)
    ok = all(t["ok"] for t in targets)
    if a.json:
        doc = {
            "python": sys.version,
            "implementation": sys.implementation.name,
            "platform": sys.platform,
            "objarena": objarena.__version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "params": {"n": a.n, "objs": a.objs, "trials": a.trials, "repeat": a.repeat,
                       "loops": a.loops, "unroll": UNROLL},
            "results": results,
            "targets": targets,
            "ok": ok,
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print(render(results, targets))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
