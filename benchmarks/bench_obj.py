#!/usr/bin/env python3
"""Obj against a native class: true bytes, creation with keywords, attribute read and write.

Standalone (no pytest), one process.  For 2, 5 and 10 attributes it measures

- a native class whose ``__init__(self, f0, f1, ...)`` sets the attributes (the reference),
- an ``objarena.Obj`` subclass with no ``__init__`` (the generated one sets the keywords),

both created as ``C(f0=a0, f1=a1, ...)``, and checks the targets of issue 5:

- true bytes per instance: Obj <= 0.55x native at 2 attributes, <= 0.6x at 5 and 10;
- attribute read and write <= 1.5x the native class's time;
- creation with keywords <= 1.0x the native class's.

and, for 3 and 10 attributes, two patterns of existing code (issue 12), each against the
same class on a native base:

- ``dictupdate``: ``__init__(self, **kw)`` sets the attributes with
  ``self.__dict__.update(kw)``: true bytes <= 0.6x native, creation <= 1.0x;
- ``mixin``: ``class MyClass(MyBaseClass, NodeMixin)``, a plain Python base whose
  ``__init__`` sets the keywords with setattr, and a node base (``Obj`` or a plain class):
  bytes and creation reported;
- ``dictkept`` (bytes only): as ``dictupdate``, and ``__init__`` also keeps ``vars(self)``
  in a list made beforehand (a registry of exported dicts), so that every instance stays
  in dict form: the Obj class learns it and its instances are born with the dict's slot
  only.  The list is not counted.

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
the median over trials is reported (see ``_common.py``).  gc is disabled while timing, and the cost of the same
loop without the operation is subtracted.  Reads and writes do 16 accesses per iteration,
of the first attribute (f0) and of the last one (f{n-1}) separately: an Obj finds an
attribute by its position in the class's shape, so both ends are measured, and the
targets apply to each.

Usage:  python benchmarks/bench_obj.py [--json] [--n N] [--trials T] [--repeat R] [--quick]
"""
import gc
import itertools
import sys
import types

import _common
import objarena
from objarena import Arena
from objarena._measure import PTR, block_size, traced

try:
    from objarena import Obj
except ImportError:  # until python/objarena/__init__.py re-exports it
    from objarena._objarena import Obj

ATTR_COUNTS = (2, 5, 10)
TARGET_BYTES = {2: 0.55, 5: 0.6, 10: 0.6}
TARGET_ACCESS = 1.5
TARGET_CREATE = 1.0
KINDS = ("native", "Obj")
PATTERN_COUNTS = (3, 10)
PATTERNS = ("dictupdate", "mixin")
MEMORY_PATTERNS = ("dictkept",)
TARGET_PATTERN_BYTES = {"dictupdate": 0.6}
TARGET_PATTERN_CREATE = {"dictupdate": 1.0}
ACCESS_OPS = ("read_first", "read_last", "write_first", "write_last")


# --- the classes ---------------------------------------------------------------------------

def _dict_update_init(self, **kw):
    self.__dict__.update(kw)


_kept = []                   # dictkept: sized before each measurement
_kept_next = itertools.count()


def _dict_kept_init(self, **kw):
    self.__dict__.update(kw)
    _kept[next(_kept_next)] = vars(self)     # no allocation: the list is made beforehand


class MyBaseClass:
    """A plain Python base of another library: its __init__ sets the keywords."""

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

    def describe(self):
        return sorted(vars(self))


def make_class(kind, names, arena=None):
    base, _, pattern = kind.partition(" ")
    if pattern:
        kw = {} if arena is None or base == "native" else {"arena": arena}
        node = object if base == "native" else Obj
        if pattern in ("dictupdate", "dictkept"):
            init = _dict_update_init if pattern == "dictupdate" else _dict_kept_init
            return types.new_class(f"{base}DictUpdate", (node,), kw, lambda ns: ns.update(
                __init__=init, __module__=__name__))
        mixin = types.new_class("NodeMixin", (node,), kw,
                                lambda ns: ns.__setitem__("__module__", __name__))
        return types.new_class(f"{base}Mixin", (MyBaseClass, mixin), {},
                               lambda ns: ns.__setitem__("__module__", __name__))
    if kind == "native":
        return type("Native", (), {"__init__": _common.generated_init(names),
                                   "__module__": __name__})
    if kind == "Obj":
        kw = {} if arena is None else {"arena": arena}
        return types.new_class("ArenaObj", (Obj,), kw,
                               lambda ns: ns.__setitem__("__module__", __name__))
    raise ValueError(kind)


def compile_loops(names):
    kwargs = ", ".join(f"{f}=a{i}" for i, f in enumerate(names))
    first, last = names[0], names[-1]
    ops = (("read_first", f"o.{first}"), ("read_last", f"o.{last}"),
           ("write_first", f"o.{first} = a0"), ("write_last", f"o.{last} = a0"))
    return _common.compile_loops(names, kwargs, ops, "<bench_obj>")


# --- memory --------------------------------------------------------------------------------

def memory(kind, names, n):
    global _kept_next
    values = tuple(range(len(names)))
    create = compile_loops(names)["create"]
    _kept[:] = [None] * (n + 2)
    _kept_next = itertools.count()
    try:
        return _memory(kind, names, n, values, create)
    finally:
        _kept[:] = []


def _memory(kind, names, n, values, create):
    out = {}
    if kind.startswith("Obj"):
        arena = Arena(name="bench-obj-memory")
        cls = make_class(kind, names, arena)
        cls(**dict(zip(names, values)))     # the class learns from its first instance
        holder = [None] * n
        gc.collect()
        s0 = arena.stats()
        _, requested, _ = traced(lambda: create(holder, cls, *values))
        s1 = arena.stats()
        out["bytes_in_use"] = (s1["bytes_in_use"] - s0["bytes_in_use"]) / n
        out["bytes_reserved"] = (s1["bytes_reserved"] - s0["bytes_reserved"]) / n
        out["getsizeof"] = sys.getsizeof(holder[-1])
        out["footprint"] = objarena.footprint(holder[-1])
        # Beside the arena (tracemalloc sees its blocks too): dicts of objects still in
        # dict form, for instance.
        out["outside"] = max(0.0, requested / n - out["bytes_in_use"])
        if kind.endswith("dictkept"):
            # Their dicts, each rounded to its obmalloc blocks as native's traces are:
            # the dict object with its GC header, and its table.
            head = dict.__basicsize__ + 2 * PTR
            out["outside"] = sum(block_size(head) + block_size(sys.getsizeof(d) - head)
                                 for d in _kept[1:n + 1]) / n
        out["true_bytes"] = out["bytes_reserved"] + out["outside"]
        holder = None
        gc.collect()
        return out
    cls = make_class(kind, names)
    # the class's first instance (3.11+: its shared keys) is not counted
    cls(**dict(zip(names, values)))
    holder = [None] * n
    gc.collect()
    _, requested, blocks = traced(lambda: create(holder, cls, *values))
    out["traced"] = requested / n
    out["traced_blocks"] = blocks / n
    out["getsizeof"] = sys.getsizeof(holder[-1])
    out["footprint"] = objarena.footprint(holder[-1])
    out["true_bytes"] = out["traced_blocks"]
    holder = None
    gc.collect()
    return out


# --- run -----------------------------------------------------------------------------------

def run(a, progress):
    results, targets = [], []
    ratio, target = _common.ratio, _common.target
    for f in ATTR_COUNTS:
        names = tuple(f"f{i}" for i in range(f))
        values = tuple(range(f))
        kw = dict(zip(names, values))
        progress(f"{f} attributes: memory (n={a.n:,})")
        mem = {k: memory(k, names, a.n) for k in KINDS}
        progress(f"{f} attributes: times ({a.trials} trials of {a.repeat} interleaved repeats)")
        tm = _common.timings(
            KINDS, lambda k: make_class(k, names, Arena(name=f"bench-time-{k}")
                                        if k == "Obj" else None),
            lambda cls: cls(**kw), lambda: compile_loops(names), ACCESS_OPS, values, a)
        for k in KINDS:
            results.append({"attrs": f, "kind": k, **mem[k], **tm[k]})
        nat, obj = tm["native"], tm["Obj"]
        targets.append(target(f"Obj/native true bytes, {f} attributes",
                              ratio(mem["Obj"]["true_bytes"], mem["native"]["true_bytes"]),
                              TARGET_BYTES[f], "x"))
        targets.append(target(f"Obj/native creation with keywords, {f} attributes",
                              ratio(obj["create_ns"], nat["create_ns"]), TARGET_CREATE, "x"))
        for op in ACCESS_OPS:
            targets.append(target(f"Obj/native {op.replace('_', ' ')}, {f} attributes",
                                  ratio(obj[f"{op}_ns"], nat[f"{op}_ns"]), TARGET_ACCESS, "x"))
    for pattern in PATTERNS:
        kinds = (f"native {pattern}", f"Obj {pattern}")
        for f in PATTERN_COUNTS:
            names = tuple(f"f{i}" for i in range(f))
            values = tuple(range(f))
            kw = dict(zip(names, values))
            progress(f"{pattern}, {f} attributes: memory and times")
            mem = {k: memory(k, names, a.n) for k in kinds}
            tm = _common.timings(
                kinds, lambda k: make_class(k, names, Arena(name=f"bench-time-{k}")
                                            if k.startswith("Obj") else None),
                lambda cls: cls(**kw), lambda: compile_loops(names), ACCESS_OPS, values, a)
            for k in kinds:
                results.append({"attrs": f, "kind": k, **mem[k], **tm[k]})
            nat, obj = kinds
            if pattern in TARGET_PATTERN_BYTES:
                targets.append(target(
                    f"Obj/native true bytes, {pattern}, {f} attributes",
                    ratio(mem[obj]["true_bytes"], mem[nat]["true_bytes"]),
                    TARGET_PATTERN_BYTES[pattern], "x"))
                targets.append(target(
                    f"Obj/native creation, {pattern}, {f} attributes",
                    ratio(tm[obj]["create_ns"], tm[nat]["create_ns"]),
                    TARGET_PATTERN_CREATE[pattern], "x"))
    for pattern in MEMORY_PATTERNS:
        for f in PATTERN_COUNTS:
            names = tuple(f"f{i}" for i in range(f))
            progress(f"{pattern}, {f} attributes: memory")
            for k in (f"native {pattern}", f"Obj {pattern}"):
                results.append({"attrs": f, "kind": k, **memory(k, names, a.n)})
    return results, targets


def render(results, targets):
    ratio = _common.ratio
    lines = [_common.header(), ""]
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
    lines += _common.table(head, rows)
    lines.append("")
    lines.append("ratios Obj / native class (Python __init__ setting the attributes):")
    by = {(r["attrs"], r["kind"]): r for r in results}
    rows = [(f, "native", "Obj", "") for f in ATTR_COUNTS]
    rows += [(f, f"native {p}", f"Obj {p}", f" {p}")
             for p in PATTERNS + MEMORY_PATTERNS for f in PATTERN_COUNTS]
    for f, nkind, okind, label in rows:
        if (f, nkind) not in by:
            continue
        nat, obj = by[f, nkind], by[f, okind]
        parts = [f"true bytes {ratio(obj['true_bytes'], nat['true_bytes']):.2f}x"]
        if obj.get("outside", 0.0) < 1.0:    # else the arena holds only part of it
            parts[0] += f" (in use / traced {ratio(obj['bytes_in_use'], nat['traced']):.2f}x)"
        if "create_ns" in obj:
            parts.append(f"create {ratio(obj['create_ns'], nat['create_ns']):.2f}x")
            parts += [f"{op.replace('_', ' ')} {ratio(obj[op + '_ns'], nat[op + '_ns']):.2f}x"
                      for op in ACCESS_OPS]
        lines.append(f"  {f:2d} attributes{label}: " + ", ".join(parts))
    lines.append("")
    lines += _common.target_lines(targets)
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
    return _common.main("bench_obj", __doc__, run, render, argv,
                        n=1_000_000, n_help="instances for memory (default 1000000: "
                        "bytes_reserved grows by whole 1 MiB chunks, so N must be large for a "
                        "per-instance figure within 1 B)",
                        trials=5, repeat=11, loops=40, quick_n=200_000)


if __name__ == "__main__":
    sys.exit(main())
