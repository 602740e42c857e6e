"""What bench_obj.py and bench_slotobj.py share: their command line, the interleaved
timing, the text table and the JSON envelope.

Times: each sample calls a generated loop over a list of ``--objs`` instances ``--loops``
times; within a trial the kinds run interleaved inside every repeat (so that slow drifts
of the machine hit them alike) and the best of ``--repeat`` samples is kept (timeit's
best-of-k); each of ``--trials`` trials uses fresh code objects and instances at other
addresses, and the median over trials is reported (so that one lucky or unlucky memory
layout does not decide a ratio).  gc is disabled while timing, and the cost of the same
loop without the operation is subtracted.
"""
import argparse
import gc
import json
import statistics
import sys
import time

import objarena
from objarena.compare import generated_init  # noqa: F401  (for the bench scripts)

UNROLL = 16  # operations per iteration in the read and write loops


def compile_loops(names, call, ops, filename):
    """The timed loops, compiled afresh (one copy per kind and trial).

    create(holder, C, a0, a1, ...) fills holder with ``C(<call>)``; create_base does the
    same loop storing a0; loop(objs, a0) iterates and does nothing; and for each
    (name, statement) of ops, name(objs, a0) runs the statement UNROLL times per instance
    ``o``.
    """
    args = ", ".join(f"a{i}" for i in range(len(names)))
    src = (
        f"def create(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = C({call})\n"
        f"def create_base(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = a0\n"
        f"def loop(objs, a0):\n"
        f"    for o in objs:\n"
        f"        pass\n"
    )
    for name, stmt in ops:
        src += (
            f"def {name}(objs, a0):\n"
            f"    for o in objs:\n"
            f"        {'; '.join([stmt] * UNROLL)}\n"
        )
    ns = {}
    exec(compile(src, filename, "exec"), ns)
    return ns


def _sample(fn, args, loops):
    t0 = time.perf_counter_ns()
    for _ in range(loops):
        fn(*args)
    return (time.perf_counter_ns() - t0) / loops


def _trial(kinds, make_class, new, compile_ops, ops, values, n_objs, repeat, loops, shift):
    """One trial: fresh code objects and instances, best-of-repeat ns per run and kind."""
    # One copy of the loops per kind: a shared code object would have its attribute
    # instructions specialised for one type and deoptimised by the next (3.11+).
    code = {k: compile_ops() for k in kinds}
    classes = {k: make_class(k) for k in kinds}
    # `shift` instances made first move the measured ones to other addresses (cache sets,
    # 4 KiB aliasing), so that no kind keeps one lucky or unlucky layout in every trial.
    pads = {k: [new(classes[k]) for _ in range(shift)] for k in kinds}
    objs = {k: [new(classes[k]) for _ in range(n_objs)] for k in kinds}
    holders = {k: [None] * n_objs for k in kinds}
    best = {}
    for _ in range(repeat):
        for k in kinds:
            c, h, o, fns = classes[k], holders[k], objs[k], code[k]
            runs = [("create_base", fns["create_base"], (h, c) + values),
                    ("create", fns["create"], (h, c) + values),
                    ("loop", fns["loop"], (o, values[0]))]
            runs += [(op, fns[op], (o, values[0])) for op in ops]
            for op, fn, args in runs:
                t = _sample(fn, args, loops)
                if t < best.get((k, op), float("inf")):
                    best[k, op] = t
    del pads
    out = {}
    for k in kinds:
        r = {
            "create_ns": (best[k, "create"] - best[k, "create_base"]) / n_objs,
            "create_loop_ns": best[k, "create_base"] / n_objs,
        }
        for op in ops:
            r[f"{op}_ns"] = (best[k, op] - best[k, "loop"]) / (n_objs * UNROLL)
        r["loop_ns"] = best[k, "loop"] / n_objs
        out[k] = r
    return out


def timings(kinds, make_class, new, compile_ops, ops, values, a):
    """ns per operation for every kind: the median over a.trials of best-of-a.repeat.

    make_class(kind) -> a fresh class; new(cls) -> one instance; compile_ops() -> the
    namespace of ``compile_loops``, whose op functions ``ops`` names; values: the field
    values that create passes.  Keys per kind: create_ns, create_loop_ns, loop_ns and
    <op>_ns.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        per_trial = [_trial(kinds, make_class, new, compile_ops, ops, values, a.objs,
                            a.repeat, a.loops, shift=7 * t + 1)
                     for t in range(a.trials)]
    finally:
        if was_enabled:
            gc.enable()
    return {k: {key: statistics.median(t[k][key] for t in per_trial) for key in per_trial[0][k]}
            for k in kinds}


def target(name, value, limit, unit):
    """One target: met when value <= limit."""
    return {"name": name, "value": value, "limit": limit, "unit": unit, "ok": value <= limit}


def ratio(a, b):
    return a / b if b > 0 else float("inf")


def header():
    return (f"objarena {objarena.__version__} on {sys.version.split()[0]} "
            f"({sys.implementation.name}, {sys.platform})")


def table(head, rows):
    """Aligned lines: the second column (the kind) to the left, the others to the right."""
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    return ["  ".join(c.rjust(w[i]) if i != 1 else c.ljust(w[i]) for i, c in enumerate(r))
            for r in (head, *rows)]


def target_lines(targets):
    return ["targets:"] + [
        f"  [{'ok' if t['ok'] else 'MISSED'}] {t['name']}: "
        f"{t['value']:.3g}{t['unit']} (limit {t['limit']}{t['unit']})"
        for t in targets
    ]


def main(prog, doc, run, render, argv, *, n, n_help, trials, repeat, loops, quick_n):
    """The benchmarks' command line; returns the exit status (1 if a target is missed).

    run(a, progress) -> (results, targets); render(results, targets) -> text.
    """
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    ap.add_argument("--n", type=int, default=n, help=n_help)
    ap.add_argument("--objs", type=int, default=256,
                    help="instances per timing loop (default 256: they stay in L1 cache)")
    ap.add_argument("--trials", type=int, default=trials,
                    help=f"independent trials; the median is reported (default {trials})")
    ap.add_argument("--repeat", type=int, default=repeat,
                    help=f"interleaved repeats per trial; the best is kept (default {repeat})")
    ap.add_argument("--loops", type=int, default=loops,
                    help=f"loop calls per sample (default {loops})")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    a = ap.parse_args(argv)
    if min(a.n, a.objs, a.trials, a.repeat, a.loops) < 1:
        ap.error("--n, --objs, --trials, --repeat and --loops must be >= 1")
    if a.quick:
        a.trials, a.repeat, a.loops, a.n = 3, 3, 5, min(a.n, quick_n)

    def progress(msg):
        print(f"{prog}: {msg}", file=sys.stderr, flush=True)

    results, targets = run(a, progress)
    ok = all(t["ok"] for t in targets)
    if a.json:
        json.dump({
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
        }, sys.stdout, indent=2)
        print()
    else:
        print(render(results, targets))
    for t in targets:
        if not t["ok"]:
            progress(f"target missed: {t['name']}: {t['value']:.3g}{t['unit']} "
                     f"(limit {t['limit']}{t['unit']})")
    return 0 if ok else 1
