#!/usr/bin/env python3
"""Obj against a native class: true bytes, creation with keywords, attribute read and write.

Standalone (no pytest), one process.  For 2, 5 and 10 attributes it measures

- a native class whose ``__init__(self, f0, f1, ...)`` sets the attributes (the reference),
- an ``objarena.Obj`` subclass with no ``__init__`` (the generated one sets the keywords),

both created as ``C(f0=a0, f1=a1, ...)``, and checks the targets of issue 5:

- true bytes per instance: Obj <= 0.55x native at 2 attributes, <= 0.6x at 5 and 10;
- attribute read and write <= 1.5x the native class's time;
- creation with keywords <= 1.0x the native class's.

Exit status 1 if a target is missed (the missed ones are printed).

Method.  Memory: N instances built into a list allocated beforehand (so the list is not
counted), with small-int attribute values (shared: they cost nothing).  Obj: the growth of
a fresh Arena's ``stats()["bytes_in_use"]`` / N (the blocks) and ``bytes_reserved`` / N
(whole 1 MiB chunks, with the pages' side tables: the true bytes, which the targets use;
N is large so that chunk granularity costs under 1 B per instance).  Native: the growth of
tracemalloc's traced memory / N ("traced", the bytes asked for), and the same traces each
rounded up to the obmalloc block it occupies, a multiple of 16 ("blocks": the true bytes,
which the targets use).  These are the definitions of ``objarena.compare``'s true_bytes.
On 3.11+ the native figure includes the instance's values array (or, on 3.13, its inline
values), which ``sys.getsizeof`` leaves out.

Times: each sample calls a generated loop over a list of 256 instances ``--loops`` times;
within a trial the kinds run interleaved inside every repeat (so that slow drifts of the
machine hit them alike) and the best of ``--repeat`` samples is kept (timeit's best-of-k);
each of ``--trials`` trials uses fresh code objects and instances at other addresses, and
the median over trials is reported.  gc is disabled while timing, and the cost of the same
loop without the operation is subtracted.  Reads and writes do 16 accesses per iteration,
of the first attribute (f0) and of the last one (f{n-1}) separately: an Obj finds an
attribute by its position in the class's shape, so both ends are measured, and the
targets apply to each.

Usage:  python benchmarks/bench_obj.py [--json] [--n N] [--trials T] [--repeat R] [--quick]
"""
import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
import types

import objarena
from objarena import Arena

try:
    from objarena import Obj
except ImportError:  # until python/objarena/__init__.py re-exports it
    from objarena._objarena import Obj

ATTR_COUNTS = (2, 5, 10)
TARGET_BYTES = {2: 0.55, 5: 0.6, 10: 0.6}
TARGET_ACCESS = 1.5
TARGET_CREATE = 1.0
UNROLL = 16
KINDS = ("native", "Obj")
ACCESS_OPS = ("read_first", "read_last", "write_first", "write_last")


# --- the classes ---------------------------------------------------------------------------

def make_class(kind, names, arena=None):
    if kind == "native":
        src = f"def __init__(self, {', '.join(names)}):\n"
        src += "".join(f"    self.{f} = {f}\n" for f in names)
        ns = {}
        exec(src, ns)
        return type("Native", (), {"__init__": ns["__init__"], "__module__": __name__})
    if kind == "Obj":
        kw = {} if arena is None else {"arena": arena}
        return types.new_class("ArenaObj", (Obj,), kw,
                               lambda ns: ns.__setitem__("__module__", __name__))
    raise ValueError(kind)


def compile_loops(names):
    args = ", ".join(f"a{i}" for i in range(len(names)))
    kwargs = ", ".join(f"{f}=a{i}" for i, f in enumerate(names))
    first, last = names[0], names[-1]
    src = (
        f"def create(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = C({kwargs})\n"
        f"def create_base(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = a0\n"
        f"def read_first(objs, a0):\n"
        f"    for o in objs:\n"
        f"        {'; '.join([f'o.{first}'] * UNROLL)}\n"
        f"def read_last(objs, a0):\n"
        f"    for o in objs:\n"
        f"        {'; '.join([f'o.{last}'] * UNROLL)}\n"
        f"def write_first(objs, a0):\n"
        f"    for o in objs:\n"
        f"        {'; '.join([f'o.{first} = a0'] * UNROLL)}\n"
        f"def write_last(objs, a0):\n"
        f"    for o in objs:\n"
        f"        {'; '.join([f'o.{last} = a0'] * UNROLL)}\n"
        f"def loop(objs, a0):\n"
        f"    for o in objs:\n"
        f"        pass\n"
    )
    ns = {}
    exec(compile(src, "<bench_obj>", "exec"), ns)
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
    create = compile_loops(names)["create"]
    out = {}
    if kind == "Obj":
        arena = Arena(name="bench-obj-memory")
        cls = make_class(kind, names, arena)
        holder = [None] * n
        gc.collect()
        s0 = arena.stats()
        create(holder, cls, *values)
        s1 = arena.stats()
        out["bytes_in_use"] = (s1["bytes_in_use"] - s0["bytes_in_use"]) / n
        out["bytes_reserved"] = (s1["bytes_reserved"] - s0["bytes_reserved"]) / n
        out["getsizeof"] = sys.getsizeof(holder[-1])
        out["footprint"] = objarena.footprint(holder[-1])
        out["true_bytes"] = out["bytes_reserved"]
        del holder
        gc.collect()
        return out
    cls = make_class(kind, names)
    cls(*values)  # the class's first instance (3.11+: its shared keys) is not counted
    holder = [None] * n
    gc.collect()
    tracemalloc.start()
    try:
        b0 = _blocks(tracemalloc.take_snapshot())
        r0 = tracemalloc.get_traced_memory()[0]
        create(holder, cls, *values)
        r1 = tracemalloc.get_traced_memory()[0]
        b1 = _blocks(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    out["traced"] = (r1 - r0) / n
    out["traced_blocks"] = (b1 - b0) / n
    out["getsizeof"] = sys.getsizeof(holder[-1])
    out["footprint"] = objarena.footprint(holder[-1])
    out["true_bytes"] = out["traced_blocks"]
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
    kw = dict(zip(names, values))
    # One copy of the loops per kind: a shared code object would have its attribute
    # instructions specialised for one type and deoptimised by the next (3.11+).
    code = {k: compile_loops(names) for k in KINDS}
    classes = {k: make_class(k, names, Arena(name=f"bench-time-{k}") if k == "Obj" else None)
               for k in KINDS}
    # `shift` instances made first move the measured ones to other addresses
    pads = {k: [classes[k](**kw) for _ in range(shift)] for k in KINDS}
    objs = {k: [classes[k](**kw) for _ in range(n_objs)] for k in KINDS}
    holders = {k: [None] * n_objs for k in KINDS}
    best = {}
    for _ in range(repeat):
        for k in KINDS:
            c, h, o, fns = classes[k], holders[k], objs[k], code[k]
            runs = [("create_base", fns["create_base"], (h, c) + values),
                    ("create", fns["create"], (h, c) + values),
                    ("loop", fns["loop"], (o, 0))]
            runs += [(op, fns[op], (o, 0)) for op in ACCESS_OPS]
            for op, fn, args in runs:
                t = _sample(fn, args, loops)
                if t < best.get((k, op), float("inf")):
                    best[k, op] = t
    del pads
    out = {}
    for k in KINDS:
        r = {
            "create_ns": (best[k, "create"] - best[k, "create_base"]) / n_objs,
            "loop_ns": best[k, "loop"] / n_objs,
        }
        for op in ACCESS_OPS:
            r[f"{op}_ns"] = (best[k, op] - best[k, "loop"]) / (n_objs * UNROLL)
        out[k] = r
    return out


def timings(names, n_objs, repeat, loops, trials):
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

def _ratio(a, b):
    return a / b if b > 0 else float("inf")


def _target(name, value, limit, unit):
    return {"name": name, "value": value, "limit": limit, "unit": unit, "ok": value <= limit}


def run(n_mem, n_objs, repeat, loops, trials, progress):
    results, targets = [], []
    for f in ATTR_COUNTS:
        names = tuple(f"f{i}" for i in range(f))
        progress(f"{f} attributes: memory (n={n_mem:,})")
        mem = {k: memory(k, names, n_mem) for k in KINDS}
        progress(f"{f} attributes: times ({trials} trials of {repeat} interleaved repeats)")
        tm = timings(names, n_objs, repeat, loops, trials)
        for k in KINDS:
            results.append({"attrs": f, "kind": k, **mem[k], **tm[k]})
        nat, obj = tm["native"], tm["Obj"]
        targets.append(_target(f"Obj/native true bytes, {f} attributes",
                               _ratio(mem["Obj"]["true_bytes"], mem["native"]["true_bytes"]),
                               TARGET_BYTES[f], "x"))
        targets.append(_target(f"Obj/native creation with keywords, {f} attributes",
                               _ratio(obj["create_ns"], nat["create_ns"]), TARGET_CREATE, "x"))
        for op in ACCESS_OPS:
            targets.append(_target(f"Obj/native {op.replace('_', ' ')}, {f} attributes",
                                   _ratio(obj[f"{op}_ns"], nat[f"{op}_ns"]), TARGET_ACCESS, "x"))
    return results, targets


def render(results, targets):
    lines = [f"objarena {objarena.__version__} on {sys.version.split()[0]} "
             f"({sys.implementation.name}, {sys.platform})", ""]
    head = ("attrs", "kind", "getsizeof", "footprint", "in use B", "reserved B", "traced B",
            "blocks B", "create ns", "read f0", "read last", "write f0", "write last")
    keys = ("getsizeof", "footprint", "bytes_in_use", "bytes_reserved", "traced", "traced_blocks",
            "create_ns", "read_first_ns", "read_last_ns", "write_first_ns", "write_last_ns")
    rows = []
    for r in results:
        cells = [str(r["attrs"]), r["kind"]]
        for key in keys:
            v = r.get(key)
            fmt = "{:.2f}" if key.endswith("_ns") else "{:.1f}" if "bytes" in key \
                or key.startswith("traced") else "{}"
            cells.append("-" if v is None else fmt.format(v))
        rows.append(cells)
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines.append("  ".join(h.rjust(w[i]) if i != 1 else h.ljust(w[i]) for i, h in enumerate(head)))
    for r in rows:
        lines.append("  ".join(c.rjust(w[i]) if i != 1 else c.ljust(w[i]) for i, c in enumerate(r)))
    lines.append("")
    lines.append("ratios Obj / native class (Python __init__ setting the attributes):")
    by = {(r["attrs"], r["kind"]): r for r in results}
    for f in ATTR_COUNTS:
        nat, obj = by[f, "native"], by[f, "Obj"]
        parts = [f"true bytes {_ratio(obj['true_bytes'], nat['true_bytes']):.2f}x "
                 f"(in use / traced {_ratio(obj['bytes_in_use'], nat['traced']):.2f}x)",
                 f"create {_ratio(obj['create_ns'], nat['create_ns']):.2f}x"]
        parts += [f"{op.replace('_', ' ')} {_ratio(obj[op + '_ns'], nat[op + '_ns']):.2f}x"
                  for op in ACCESS_OPS]
        lines.append(f"  {f:2d} attributes: " + ", ".join(parts))
    lines.append("")
    lines.append("targets:")
    for t in targets:
        lines.append(f"  [{'ok' if t['ok'] else 'MISSED'}] {t['name']}: "
                     f"{t['value']:.3g}{t['unit']} (limit {t['limit']}{t['unit']})")
    lines.append("")
    lines.append("in use B: Obj: growth of a fresh Arena's bytes_in_use / N.  reserved B: growth "
                 "of bytes_reserved / N (whole chunks,")
    lines.append("page side tables included: Obj's true bytes).  traced B: native: tracemalloc "
                 "traced-memory growth / N (bytes requested);")
    lines.append("blocks B: the same traces each rounded up to its obmalloc block (native's "
                 "true bytes).  The bytes targets compare true bytes.")
    lines.append("getsizeof, footprint: sys.getsizeof and objarena.footprint of one instance.  "
                 "read f0 / read last: reads of the first /")
    lines.append("last attribute (write likewise).  Times: ns per operation, median over trials "
                 "of the best interleaved repeat, gc disabled,")
    lines.append("empty-loop cost subtracted.")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    ap.add_argument("--n", type=int, default=1_000_000,
                    help="instances for memory (default 1000000: bytes_reserved grows by whole "
                         "1 MiB chunks, so N must be large for a per-instance figure within 1 B)")
    ap.add_argument("--objs", type=int, default=256,
                    help="instances per timing loop (default 256: they stay in L1 cache)")
    ap.add_argument("--trials", type=int, default=5,
                    help="independent trials; the median is reported (default 5)")
    ap.add_argument("--repeat", type=int, default=11,
                    help="interleaved repeats per trial; the best is kept (default 11)")
    ap.add_argument("--loops", type=int, default=40, help="loop calls per sample (default 40)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    a = ap.parse_args(argv)
    if min(a.n, a.objs, a.trials, a.repeat, a.loops) < 1:
        ap.error("--n, --objs, --trials, --repeat and --loops must be >= 1")
    if a.quick:
        a.trials, a.repeat, a.loops, a.n = 3, 3, 5, min(a.n, 200_000)

    def progress(msg):
        print(f"bench_obj: {msg}", file=sys.stderr, flush=True)

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
    if not ok:
        for t in targets:
            if not t["ok"]:
                print(f"bench_obj: target missed: {t['name']}: {t['value']:.3g}{t['unit']} "
                      f"(limit {t['limit']}{t['unit']})", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
