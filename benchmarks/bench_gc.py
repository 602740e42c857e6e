#!/usr/bin/env python3
"""What the arena's cycle collector costs, against CPython's gc, in one run.

Standalone (no pytest), one process.  The ratios, each with the target of the collector
issue (figures in docs/benchmarks.md):

1. ``build``: collector overhead per surviving record while a program builds N records
   of 2 fields held by a list: (time with the collectors on - time with them off) / N,
   SlotObj (CPython's gc and the arena's both on or both off) against native
   ``__slots__`` (gc on or off).  Target <= 0.25.  ``build_vs_msgspec``: the SlotObj
   build with the collectors on against ``msgspec.Struct``'s (gc on), when msgspec is
   installed; target <= 1.3.  recordclass is shown beside them when installed.
2. ``full``: a full collection of N live SlotObj objects in 2-cycles (a <-> b, the a's
   held by a list), ``arena.collect(2)``, against ``gc.collect()`` over the same graph of
   native ``__slots__`` objects.  Target <= 0.25.  With it, the collection's work space
   (``work_space``: bytes per object, target <= 8) and the peak RSS during it against the
   RSS before it (``peak_rss``, Linux; target <= 1.02).
3. ``gc_scan``: ``gc.collect()`` with those N arena objects alive, against ``gc.collect()``
   with the N native ones alive (what CPython's gc stops paying for arena objects).
   Target <= 0.1.  Shown beside it, not as targets: the same graph held by a tuple and
   with the pairs linked to one another.
4. ``mixed``: a tree of M Obj nodes whose children are in native lists, each node with a
   parent pointer and a native instance that points back to it; the collectors' time
   (CPython's, from gc.callbacks, plus the arena's, from Arena.callbacks) while building
   it with both collectors on and in one ``gc.collect()`` after, against the same tree of
   native nodes.  Target <= 0.6.
5. ``young``: a loop that creates L short-lived self-cycles in an arena with automatic
   collection on, with N old arena objects alive in that arena, against the same loop in
   an arena holding none.  Target <= 1.2 (young collections must not pay for the old
   heap).

Method.  Every figure is the best of ``--repeat`` samples, the kinds interleaved.  For 2
and 3 the heaps are built once per kind and measured while alive; CPython's gc is
disabled while building and around the samples, and the heap that is not being measured
is not alive.  For 5 the two arenas are measured in alternation with CPython's gc
disabled.

Usage:  python benchmarks/bench_gc.py [--json] [--n N] [--mixed-n M] [--loop L] [--repeat R]
Exit status 1 if a target is missed.
"""
import argparse
import gc
import json
import sys
import time

import objarena
from objarena import Arena, Obj, SlotObj
import objarena._testing as testing

try:
    import msgspec
except ImportError:
    msgspec = None
try:
    import recordclass
except ImportError:
    recordclass = None

TARGETS = {"build": 0.25, "build_vs_msgspec": 1.3, "full": 0.25, "work_space": 8,
           "peak_rss": 1.02, "gc_scan": 0.1, "mixed": 0.6, "young": 1.2}


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


# --- 1. building records --------------------------------------------------------

def build_code():
    ns = {}
    exec("def build(C, n):\n"
         "    out = []\n"
         "    append = out.append\n"
         "    for i in range(n):\n"
         "        append(C(i, None))\n"
         "    return out\n", ns)
    return ns["build"]


def bench_build(n, repeat):
    arena = Arena("bench-build")

    class Rec(SlotObj, arena=arena):
        __slots__ = ("a", "b")

    class NativeRec:
        __slots__ = ("a", "b")

        def __init__(self, a, b):
            self.a = a
            self.b = b

    kinds = {"native": NativeRec, "slotobj": Rec}
    if msgspec is not None:
        class MsgRec(msgspec.Struct):
            a: object
            b: object
        kinds["msgspec"] = MsgRec
    if recordclass is not None:
        kinds["recordclass"] = recordclass.make_dataclass("RcRec", ("a", "b"))
    code = {k: build_code() for k in kinds}     # one copy each (specialisation)
    best_t = {}
    was = gc.isenabled()
    try:
        for _ in range(repeat):
            for k, C in kinds.items():
                for on in (True, False):
                    gc.collect()
                    arena.collect()
                    if on:
                        gc.enable()
                        arena.enable()
                    else:
                        gc.disable()
                        arena.disable()
                    t0 = time.perf_counter()
                    out = code[k](C, n)
                    t = time.perf_counter() - t0
                    gc.disable()
                    del out
                    best_t[k, on] = min(best_t.get((k, on), t), t)
    finally:
        arena.enable()
        if was:
            gc.enable()
    gc.collect()
    ns = {k: {"on_ns": best_t[k, True] / n * 1e9, "off_ns": best_t[k, False] / n * 1e9}
          for k in kinds}
    for r in ns.values():
        r["overhead_ns"] = r["on_ns"] - r["off_ns"]
    out = {"build": {"per_record": ns,
                     "ratio": ns["slotobj"]["overhead_ns"] / ns["native"]["overhead_ns"]}}
    if msgspec is not None:
        out["build_vs_msgspec"] = {"ratio": ns["slotobj"]["on_ns"] / ns["msgspec"]["on_ns"]}
    return out


# --- 2. memory of a full collection ------------------------------------------------

def rss_now_and_peak(reset=False):
    """(VmRSS, VmHWM) in bytes, Linux; (None, None) elsewhere.  reset: start a new
    peak from now (writing 5 to /proc/self/clear_refs)."""
    try:
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        vals = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":")
                    vals[k] = int(v.split()[0]) * 1024
        return vals["VmRSS"], vals["VmHWM"]
    except (OSError, KeyError, ValueError):
        return None, None


# --- 4. mixed graphs ----------------------------------------------------------------

class NativeNode:
    pass


class Payload:
    __slots__ = ("owner", "value")


def tree_code():
    ns = {}
    exec("def build(Node, Payload, m, fanout):\n"
         "    root = Node()\n"
         "    root.parent = None\n"
         "    root.children = []\n"
         "    p = Payload(); p.owner = root; p.value = 0; root.payload = p\n"
         "    level = [root]\n"
         "    made = 1\n"
         "    while made < m:\n"
         "        nxt = []\n"
         "        for parent in level:\n"
         "            for _ in range(fanout):\n"
         "                if made >= m:\n"
         "                    break\n"
         "                node = Node()\n"
         "                node.parent = parent\n"
         "                node.children = []\n"
         "                p = Payload(); p.owner = node; p.value = made; node.payload = p\n"
         "                parent.children.append(node)\n"
         "                nxt.append(node)\n"
         "                made += 1\n"
         "        level = nxt\n"
         "    return root\n", ns)
    return ns["build"]


class Stopwatch:
    """A gc-style callback (phase, info) that sums the time from each "start" to its
    "stop"."""

    def __init__(self):
        self.total = 0.0
        self._t = None

    def __call__(self, phase, info):
        if phase == "start":
            self._t = time.perf_counter()
        elif self._t is not None:
            self.total += time.perf_counter() - self._t
            self._t = None


class CollectorClock:
    """Time spent in CPython's collections (gc.callbacks, first in the list so that
    objarena's own hook, which may collect arenas at "stop", runs after its stop) and
    in an arena's (Arena.callbacks)."""

    def __init__(self, arena=None):
        self._cpython = Stopwatch()
        self._arena_watch = Stopwatch()
        self._arena = arena

    @property
    def cpython(self):
        return self._cpython.total

    @property
    def arena(self):
        return self._arena_watch.total

    def __enter__(self):
        gc.callbacks.insert(0, self._cpython)
        if self._arena is not None:
            self._arena.callbacks.append(self._arena_watch)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._cpython)
        if self._arena is not None:
            self._arena.callbacks.remove(self._arena_watch)


def bench_mixed(m, repeat, fanout=4):
    arena = Arena("bench-mixed")

    class ArenaNode(Obj, arena=arena):
        pass

    kinds = {"native": (NativeNode, None), "arena": (ArenaNode, arena)}
    code = {k: tree_code() for k in kinds}
    best = {}
    for _ in range(repeat):
        for k, (Node, a) in kinds.items():
            gc.collect()
            gc.enable()
            with CollectorClock(a) as clock:
                root = code[k](Node, Payload, m, fanout)
                gc.collect()
            total = clock.cpython + clock.arena
            if total < best.get(k, (float("inf"),))[0]:
                best[k] = (total, clock.cpython, clock.arena)
            del root
            gc.collect()
    return {"mixed": {"native_s": best["native"][0], "arena_s": best["arena"][0],
                      "arena_cpython_part_s": best["arena"][1],
                      "arena_arena_part_s": best["arena"][2],
                      "nodes": m, "ratio": best["arena"][0] / best["native"][0]}}



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
            current, _ = testing.work_bytes()
            rss_before, _ = rss_now_and_peak(reset=True)
            arena.collect(2)
            _, rss_peak = rss_now_and_peak()
            _, work_peak = testing.work_bytes()
            memory.append(((work_peak - current) / n,
                           rss_peak / rss_before if rss_before else None))
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

    memory = []
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
        "work_space": {"bytes_per_object": max(w for w, _ in memory),
                       "ratio": max(w for w, _ in memory)},
        "peak_rss": {"ratio": max((r for _, r in memory if r is not None), default=0.0)},
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
    p.add_argument("--mixed-n", type=int, default=300_000,
                   help="nodes of the mixed tree (default 3e5)")
    p.add_argument("--loop", type=int, default=300_000,
                   help="short-lived self-cycles in the young loop (default 3e5)")
    p.add_argument("--repeat", type=int, default=5, help="samples per figure (best kept)")
    p.add_argument("--trials", type=int, default=3,
                   help="times each heap of figures 1 and 2 is built anew (best kept)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)

    results = {}
    results.update(bench_build(args.n, args.repeat))
    results.update(bench_full_and_gc_scan(args.n, args.repeat, args.trials))
    results.update(bench_mixed(args.mixed_n, max(1, args.repeat // 2)))
    results.update(bench_young(args.n, args.loop, args.repeat))
    ok = True
    for name, target in TARGETS.items():
        if name not in results:
            continue
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
        def mark(r):
            return f"(target <= {r['target']}) {'ok' if r['met'] else 'MISSED'}"
        r = results["build"]
        pr = r["per_record"]
        print(f"1. building N records, ns per record, collectors on / off (overhead):")
        for k, v in pr.items():
            print(f"     {k:12} {v['on_ns']:7.1f} / {v['off_ns']:7.1f}  "
                  f"({v['overhead_ns']:6.1f})")
        print(f"   overhead slotobj / native {r['ratio']:.3f} {mark(r)}")
        if "build_vs_msgspec" in results:
            r = results["build_vs_msgspec"]
            print(f"   slotobj build / msgspec.Struct build, collectors on "
                  f"{r['ratio']:.3f} {mark(r)}")
        r = results["full"]
        print(f"2. full collection, N live objects in 2-cycles: arena.collect(2) "
              f"{r['arena_collect_s'] * 1e3:8.2f} ms   gc.collect() native "
              f"{r['gc_collect_s'] * 1e3:8.2f} ms   ratio {r['ratio']:.3f} "
              f"(target <= {r['target']}) {'ok' if r['met'] else 'MISSED'}")
        r = results["work_space"]
        print(f"   work space {r['bytes_per_object']:.2f} B per object {mark(r)}")
        r = results["peak_rss"]
        print(f"   peak RSS during it / RSS before {r['ratio']:.4f} {mark(r)}")
        r = results["gc_scan"]
        print(f"3. gc.collect() with N arena objects alive "
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
        r = results["mixed"]
        print(f"4. mixed tree of {r['nodes']:,} Obj nodes (native lists, parent pointers, a "
              f"native instance each): collectors' time building + one gc.collect() "
              f"{r['arena_s'] * 1e3:8.2f} ms (CPython's {r['arena_cpython_part_s'] * 1e3:.2f}, "
              f"the arena's {r['arena_arena_part_s'] * 1e3:.2f})   native "
              f"{r['native_s'] * 1e3:8.2f} ms   ratio {r['ratio']:.3f} {mark(r)}")
        r = results["young"]
        print(f"5. {args.loop:,} short-lived self-cycles, automatic collection: with N "
              f"old objects {r['with_old_s'] * 1e3:8.2f} ms   without "
              f"{r['without_old_s'] * 1e3:8.2f} ms   ratio {r['ratio']:.3f} "
              f"(target <= {r['target']}) {'ok' if r['met'] else 'MISSED'}")
        print(f"   collections per generation with the old heap: "
              f"{r['collections_with_old']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
