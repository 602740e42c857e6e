#!/usr/bin/env python3
"""What the arena's cycle collector costs, against CPython's gc, in one run.

Standalone (no pytest), one process.  Three ratios, each with the target of the
collector issue:

1. ``full``: a full collection of N live SlotObj objects in 2-cycles (a <-> b, the a's
   held by a list), ``arena.collect(2)``, against ``gc.collect()`` over the same graph
   of native ``__slots__`` objects.  Target <= 0.5.
2. ``gc_scan``: ``gc.collect()`` with those N arena objects alive, against
   ``gc.collect()`` with the N native ones alive (what CPython's gc stops paying for
   arena objects).  Target <= 0.1.  Shown beside it, not as targets: the same graph
   held by a tuple (``gc_scan_tuple``) and with the pairs linked to one another
   (``gc_scan_linked``).  With a list, CPython's gc still reads the header of each of
   the list's items, arena objects or not: that cost is the list's.
3. ``young``: a loop that creates L short-lived self-cycles in an arena with automatic
   collection on, with N old arena objects alive in that arena (promoted to generation
   2 by a full collection beforehand), against the same loop in an arena holding none.
   Target <= 1.2 (young collections must not pay for the old heap).

Method.  Every figure is the best of ``--repeat`` samples (a collection of an unchanged
heap costs the same every time; the minimum is the least disturbed one).  For 1 and 2
the heaps are built once per kind and measured while alive; CPython's gc is disabled
while building and around the samples, and the heap that is not being measured is not
alive (so ``gc.collect()`` over the arena graph sees only the list and the
interpreter's own objects, and likewise for the native one).  For 3 the two arenas are
measured in alternation, ``--repeat`` times each, with CPython's gc disabled (the loop
creates arena objects only); each sample runs the loop in the same arena again, whose
automatic collections keep it near empty of young objects.

Usage:  python benchmarks/bench_gc.py [--json] [--n N] [--loop L] [--repeat R]
Exit status 1 if a target is missed.
"""
import argparse
import gc
import json
import sys
import time

import objarena
from objarena import Arena, SlotObj

TARGETS = {"full": 0.5, "gc_scan": 0.1, "young": 1.2}


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def pairs(cls, n):
    """n objects in n/2 2-cycles; the list holds one object of each pair."""
    out = []
    append = out.append
    for _ in range(n // 2):
        a = cls()
        b = cls()
        a.b = b
        b.a = a
        append(a)
    return out


class NativePair:
    __slots__ = ("a", "b")


class NativeLinked:
    __slots__ = ("a", "b", "next")


def linked_pairs(cls, n):
    """n objects in n/2 2-cycles, each pair linking to the next: one root, no list."""
    root = None
    for _ in range(n // 2):
        a = cls()
        b = cls()
        a.b = b
        b.a = a
        a.next = root
        root = a
    return root


def bench_full_and_gc_scan(n, repeat, trials):
    arena = Arena("bench-gc")
    arena.disable()

    class ArenaPair(SlotObj, arena=arena):
        __slots__ = ("a", "b")

    class ArenaLinked(SlotObj, arena=arena):
        __slots__ = ("a", "b", "next")

    def measure(build, arena_side):
        """(collect of its own collector, gc.collect()) with the heap alive."""
        gc.collect()
        heap = build()
        if arena_side:
            arena.collect(2)                   # settle: everything in generation 2
            assert arena.stats()["objects"] == n // 2 * 2
            own = best(lambda: arena.collect(2), repeat)
        else:
            gc.collect()
            own = None
        scan = best(gc.collect, repeat)
        del heap
        if arena_side:
            assert arena.collect(2) == n // 2 * 2 and arena.stats()["objects"] == 0
        else:
            gc.collect()
        return own, scan

    t = {k: [] for k in ("arena_full", "gc_arena", "gc_native", "gc_arena_linked",
                         "gc_native_linked", "gc_arena_tuple", "gc_native_tuple")}
    gc.collect()
    gc.disable()
    try:
        for _ in range(trials):
            own, scan = measure(lambda: pairs(ArenaPair, n), True)
            t["arena_full"].append(own)
            t["gc_arena"].append(scan)
            t["gc_native"].append(measure(lambda: pairs(NativePair, n), False)[1])
            t["gc_arena_linked"].append(measure(lambda: linked_pairs(ArenaLinked, n),
                                                True)[1])
            t["gc_native_linked"].append(measure(lambda: linked_pairs(NativeLinked, n),
                                                 False)[1])
            t["gc_arena_tuple"].append(measure(lambda: tuple(pairs(ArenaPair, n)),
                                               True)[1])
            t["gc_native_tuple"].append(measure(lambda: tuple(pairs(NativePair, n)),
                                                False)[1])
        baseline = best(gc.collect, repeat)
    finally:
        gc.enable()
    gc.collect()
    m = {k: min(v) for k, v in t.items()}
    return {
        "full": {"arena_collect_s": m["arena_full"], "gc_collect_s": m["gc_native"],
                 "ratio": m["arena_full"] / m["gc_native"]},
        "gc_scan": {"gc_collect_with_arena_s": m["gc_arena"],
                    "gc_collect_with_native_s": m["gc_native"],
                    "ratio": m["gc_arena"] / m["gc_native"]},
        # Not targets: the same with the pairs held by a tuple (CPython's gc untracks
        # a tuple that holds no object it tracks, as it does for a tuple of ints: it
        # then walks nothing for the arena objects), or linked to one another (no
        # container of N pointers to walk); and gc.collect() of the interpreter alone.
        "gc_scan_tuple": {"gc_collect_with_arena_s": m["gc_arena_tuple"],
                          "gc_collect_with_native_s": m["gc_native_tuple"],
                          "ratio": m["gc_arena_tuple"] / m["gc_native_tuple"]},
        "gc_scan_linked": {"gc_collect_with_arena_s": m["gc_arena_linked"],
                           "gc_collect_with_native_s": m["gc_native_linked"],
                           "ratio": m["gc_arena_linked"] / m["gc_native_linked"],
                           "gc_collect_empty_s": baseline},
    }


def young_loop_code():
    """The measured loop, compiled once: `loops` self-cycles of class C."""
    ns = {}
    exec("def run(C, loops):\n"
         "    for _ in range(loops):\n"
         "        o = C()\n"
         "        o.a = o\n", ns)
    return ns["run"]


def bench_young(n, loops, repeat):
    run = young_loop_code()

    def setup(old):
        arena = Arena("bench-young-old" if old else "bench-young-empty")
        arena.disable()

        class Node(SlotObj, arena=arena):
            __slots__ = ("a", "b")

        heap = pairs(Node, n) if old else []
        arena.collect(2)                        # promoted by a full collection
        arena.enable()
        return arena, Node, heap

    gc.collect()
    gc.disable()
    try:
        old_arena, OldNode, old_heap = setup(True)
        empty_arena, EmptyNode, _ = setup(False)
        run(OldNode, 1000)                      # warm up both
        run(EmptyNode, 1000)
        t_old, t_empty = [], []
        for _ in range(repeat):
            for C, out in ((OldNode, t_old), (EmptyNode, t_empty)):
                t0 = time.perf_counter()
                run(C, loops)
                out.append(time.perf_counter() - t0)
        stats = old_arena.get_stats()
        old_objects = old_arena.stats()["objects"]
        del old_heap
        old_arena.disable()
        old_arena.collect(2)
    finally:
        gc.enable()
    gc.collect()
    return {
        "young": {"with_old_s": min(t_old), "without_old_s": min(t_empty),
                  "ratio": min(t_old) / min(t_empty),
                  "old_objects": old_objects,
                  "collections_with_old": [s["collections"] for s in stats]},
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="live objects (default 1e6)")
    p.add_argument("--loop", type=int, default=300_000,
                   help="short-lived self-cycles in the young loop (default 3e5)")
    p.add_argument("--repeat", type=int, default=5, help="samples per figure (best kept)")
    p.add_argument("--trials", type=int, default=3,
                   help="times each heap of figures 1 and 2 is built anew (best kept)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)

    results = {}
    results.update(bench_full_and_gc_scan(args.n, args.repeat, args.trials))
    results.update(bench_young(args.n, args.loop, args.repeat))
    ok = True
    for name, target in TARGETS.items():
        results[name]["target"] = target
        results[name]["met"] = results[name]["ratio"] <= target
        ok &= results[name]["met"]
    meta = {"python": sys.version.split()[0], "objarena": objarena.__version__,
            "n": args.n, "loop": args.loop, "repeat": args.repeat, "trials": args.trials,
            "gc_threshold": gc.get_threshold()}

    if args.json:
        print(json.dumps({"meta": meta, "results": results, "ok": ok}, indent=2))
    else:
        print(f"objarena {meta['objarena']} on CPython {meta['python']}, "
              f"N={args.n:,}, loop={args.loop:,}, best of {args.repeat}")
        r = results["full"]
        print(f"1. full collection, N live objects in 2-cycles: arena.collect(2) "
              f"{r['arena_collect_s'] * 1e3:8.2f} ms   gc.collect() native "
              f"{r['gc_collect_s'] * 1e3:8.2f} ms   ratio {r['ratio']:.3f} "
              f"(target <= {r['target']}) {'ok' if r['met'] else 'MISSED'}")
        r = results["gc_scan"]
        print(f"2. gc.collect() with N arena objects alive "
              f"{r['gc_collect_with_arena_s'] * 1e3:8.2f} ms   with N native "
              f"{r['gc_collect_with_native_s'] * 1e3:8.2f} ms   ratio {r['ratio']:.3f} "
              f"(target <= {r['target']}) {'ok' if r['met'] else 'MISSED'}")
        r = results["gc_scan_tuple"]
        print(f"   (the same with the pairs held by a tuple: "
              f"{r['gc_collect_with_arena_s'] * 1e3:.2f} ms vs "
              f"{r['gc_collect_with_native_s'] * 1e3:.2f} ms, ratio {r['ratio']:.3f})")
        r = results["gc_scan_linked"]
        print(f"   (the same with the pairs linked to one another, no list: "
              f"{r['gc_collect_with_arena_s'] * 1e3:.2f} ms vs "
              f"{r['gc_collect_with_native_s'] * 1e3:.2f} ms, ratio {r['ratio']:.3f}; "
              f"gc.collect() of the interpreter alone {r['gc_collect_empty_s'] * 1e3:.2f} ms)")
        r = results["young"]
        print(f"3. {args.loop:,} short-lived self-cycles, automatic collection: with N "
              f"old objects {r['with_old_s'] * 1e3:8.2f} ms   without "
              f"{r['without_old_s'] * 1e3:8.2f} ms   ratio {r['ratio']:.3f} "
              f"(target <= {r['target']}) {'ok' if r['met'] else 'MISSED'}")
        print(f"   collections per generation with the old heap: "
              f"{r['collections_with_old']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
