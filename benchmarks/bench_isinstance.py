#!/usr/bin/env python3
"""isinstance()/issubclass() against arena classes, now that ArenaType is an abc.ABCMeta.

Standalone, one process.  ArenaType derives from abc.ABCMeta (so that arena classes mix
with ABCs); its own C ``__instancecheck__``/``__subclasscheck__`` answer as ``type`` does
for every arena class that is no ABC, and hand over to ABCMeta's only for ABCs.  This
measures, per call, interleaved in one process (best of --repeat samples of --loops calls):

- ``isinstance(obj, C)`` where obj's class is C itself, a subclass of C, and an unrelated
  class (a miss), and ``issubclass(Sub, C)``;
- for C a native ``__slots__`` class, the same with a metaclass of its own (``class
  Meta(type): pass``), a SlotObj class, and a SlotObj class that is an ABC (``class
  C(abc.ABC, Node)``), whose checks go through ABCMeta's machinery.

A class whose metaclass is exactly ``type`` takes a shortcut in ``PyObject_IsInstance``
that no metaclass can have: ``isinstance`` looks ``__instancecheck__`` up on the
metaclass, binds it and calls it.  Arena classes always had a metaclass, so the figure to
keep is that of a native class with a metaclass (``type.__instancecheck__``, which is what
arena classes used before ArenaType derived from ABCMeta).  Target: SlotObj <= 1.2x the
native class with a metaclass; the ABC column shows what ABCMeta's path would cost.
Exit status 1 if the target is missed.

Run it on a quiet machine; for instruction counts, valgrind --tool=callgrind.

Usage:  python benchmarks/bench_isinstance.py [--loops N] [--repeat R]
"""
import abc
import argparse
import gc
import sys
import time

from objarena import SlotObj

TARGET = 1.2


def classes():
    class NNode:
        __slots__ = ("a",)

    class NSub(NNode):
        __slots__ = ()

    class NOther:
        __slots__ = ()

    class Meta(type):
        pass

    class MNode(metaclass=Meta):
        __slots__ = ("a",)

    class MSub(MNode):
        __slots__ = ()

    class Node(SlotObj):
        __slots__ = ("a",)

    class Sub(Node):
        __slots__ = ()

    class Other(SlotObj):
        __slots__ = ()

    class ANode(abc.ABC, SlotObj):
        __slots__ = ("a",)

    class ASub(ANode):
        __slots__ = ()

    return {"native": (NNode, NSub, NOther), "native+meta": (MNode, MSub, NOther),
            "SlotObj": (Node, Sub, Other), "SlotObj ABC": (ANode, ASub, Other)}


CASES = {
    "isinstance exact": "isinstance(s, S)",
    "isinstance subclass": "isinstance(s, C)",
    "isinstance miss": "isinstance(o, C)",
    "issubclass": "issubclass(S, C)",
}


def compile_case(stmt):
    src = (f"def run(n, C, S, s, o):\n    for _ in range(n):\n        {stmt}\n"
           f"def base(n, C, S, s, o):\n    for _ in range(n):\n        pass\n")
    ns = {}
    exec(compile(src, "<bench_isinstance>", "exec"), ns)
    return ns["run"], ns["base"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=9)
    a = ap.parse_args(argv)
    kinds = classes()
    print(f"Python {sys.version.split()[0]}: ns per call, best of {a.repeat} interleaved")
    print(f"{'case':22s}" + "".join(f"{k:>14s}" for k in kinds) + f"{'arena/meta':>12s}")
    missed = []
    gc.disable()
    for case, stmt in CASES.items():
        run, base = compile_case(stmt)
        best_run = {k: float("inf") for k in kinds}
        best_base = dict(best_run)
        for _ in range(a.repeat):
            for k, (C, S, O) in kinds.items():
                args = (a.loops, C, S, S(), O())
                t0 = time.perf_counter_ns()
                run(*args)
                t1 = time.perf_counter_ns()
                base(*args)
                t2 = time.perf_counter_ns()
                best_run[k] = min(best_run[k], (t1 - t0) / a.loops)
                best_base[k] = min(best_base[k], (t2 - t1) / a.loops)
        # the loop's own cost, the same for every kind, is subtracted
        loop = min(best_base.values())
        best = {k: best_run[k] - loop for k in kinds}
        ref = best["native+meta"]
        r = best["SlotObj"] / ref if ref > 0 else float("nan")
        print(f"{case:22s}" + "".join(f"{best[k]:14.1f}" for k in kinds) + f"{r:11.2f}x")
        if r > TARGET:
            missed.append(f"{case}: {r:.2f}x (limit {TARGET}x)")
    gc.enable()
    for m in missed:
        print(f"bench_isinstance: target missed: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
