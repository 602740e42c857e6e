"""What N small records really cost, as native Python objects and as objarena objects.

    objarena.compare(fields=2, n=100_000, kinds=None) -> list of row dicts
    python -m objarena compare [--fields 2 5 10] [--n N] [--kinds ...] [--json]

Every kind is measured the same way, one kind at a time, in this process (the resident
memory cross-check in a fresh child process):

- memory: the instances are stored in a list allocated beforehand (so the list is not
  counted) and built with the same field values, small ints that CPython shares (so the
  values cost nothing); native kinds are measured with tracemalloc, arena kinds with the
  stats of a fresh Arena;
- times: best of `repeat` runs over all n instances, with CPython's gc and the arena's
  automatic collection disabled during the timed loops (as timeit does), and creation once
  more with both enabled; the cost of the empty loop is subtracted;
- collection: gc.collect() with the n instances alive (for arena kinds it shows what
  CPython's gc pays for them: nothing), and Arena.collect() for arena kinds.

Row schema (``compare`` returns these dicts; ``--json`` prints them under "rows"):

==================  ========================================================================
key                 meaning
==================  ========================================================================
kind                registry name (see KINDS): dict, slots, dataclass, namedtuple, tuple,
                    SlotObj, and Obj once the extension provides it
label               what the kind is, for people
arena               True for objarena kinds
fields              fields per instance
n                   instances built
getsizeof           sys.getsizeof of one instance (int)
footprint           objarena.footprint of one instance (estimate for native kinds)
true_bytes          bytes per instance.  Native: the tracemalloc traces that building the
                    n instances adds, each rounded up to the allocator block it occupies
                    (obmalloc: next multiple of 16), divided by n.  Arena: the change of a
                    fresh Arena's stats()["bytes_reserved"] divided by n (whole 1 MiB
                    chunks: at small n this is mostly slack)
in_use_bytes        Native: tracemalloc traced-memory delta / n (the bytes requested).
                    Arena: the change of stats()["bytes_in_use"] / n (block sizes)
traced_bytes        tracemalloc traced-memory delta / n for every kind (for arena kinds,
                    what the arena reports to tracemalloc)
rss_bytes           resident-memory (/proc/self/statm) delta / n of a fresh child process
                    that builds the n instances; a noisy cross-check; None if unavailable
create_ns           ns to create one instance, with CPython's gc and the arena's automatic
                    collection off (as timeit does)
create_gc_ns        the same with both on, as in a program: includes the collections that
                    the allocations trigger
read_ns             ns per attribute read (tuple: index)
write_ns            ns per attribute write; None for immutable kinds
gc_ms               ms of one gc.collect() with the n instances alive
gc_ns_per_obj       (gc_ms - gc_ms with nothing alive) / n, in ns
arena_collect_ms    ms of Arena.collect() with the n instances alive; None until the
                    arena has a collector
==================  ========================================================================

To add a kind, register one ``Kind`` in ``KINDS`` (see ``_register_builtin_kinds``).
"""
import gc
import os
import sys
import time

__all__ = ["compare", "KINDS", "Kind", "ROW_KEYS", "format_table", "notes", "slots_saving"]

ROW_KEYS = (
    "kind", "label", "arena", "fields", "n",
    "getsizeof", "footprint", "true_bytes", "in_use_bytes", "traced_bytes", "rss_bytes",
    "create_ns", "create_gc_ns", "read_ns", "write_ns", "gc_ms", "gc_ns_per_obj",
    "arena_collect_ms",
)

UNROLL = 4  # attribute accesses per loop iteration in the read/write loops


class Spec:
    """How to build and use instances of one kind with given fields.

    cls:   the class (or None); available as ``C`` in the expressions.
    ctor:  expression building one instance from the field values a0, a1, ...
    read:  expression reading one field of instance ``o``.
    write: statement writing one field of ``o`` from ``a0``; None if immutable.
    arena: the Arena holding the instances, for arena kinds.
    """

    __slots__ = ("cls", "ctor", "read", "write", "arena")

    def __init__(self, cls, ctor, read, write=None, arena=None):
        self.cls, self.ctor, self.read, self.write, self.arena = cls, ctor, read, write, arena


class Kind:
    """One entry of the registry.

    name:      registry and CLI name.
    label:     human description.
    make:      make(field_names, arena) -> Spec.  `arena` is a fresh Arena for arena kinds,
               None for native ones.
    arena:     True if instances live in an objarena Arena.
    available: () -> bool; False hides the kind (an optional package is missing, or the
               extension does not provide it yet).
    """

    __slots__ = ("name", "label", "make", "arena", "available")

    def __init__(self, name, label, make, arena=False, available=None):
        self.name, self.label, self.make, self.arena = name, label, make, arena
        self.available = available or (lambda: True)

    def __repr__(self):
        return f"Kind({self.name!r})"


KINDS = {}  # name -> Kind, in table order


def register(kind):
    KINDS[kind.name] = kind
    return kind


def _args(names):
    return ", ".join(f"a{i}" for i in range(len(names)))


def _generated_init(names):
    src = f"def __init__(self, {', '.join(names)}):\n"
    src += "".join(f"    self.{f} = {f}\n" for f in names)
    ns = {}
    exec(src, ns)
    return ns["__init__"]


def _class_spec(cls, names, arena=None, mutable=True):
    write = f"o.{names[0]} = a0" if mutable else None
    return Spec(cls, f"C({_args(names)})", f"o.{names[-1]}", write, arena)


def _make_dict_class(names, arena):
    cls = type("DictRecord", (), {"__init__": _generated_init(names)})
    return _class_spec(cls, names)


def _make_slots_class(names, arena):
    cls = type("SlotsRecord", (), {"__slots__": tuple(names), "__init__": _generated_init(names)})
    return _class_spec(cls, names)


def _make_dataclass(names, arena):
    import dataclasses

    return _class_spec(dataclasses.make_dataclass("DataRecord", names, slots=True), names)


def _make_namedtuple(names, arena):
    import collections

    return _class_spec(collections.namedtuple("NTRecord", names), names, mutable=False)


def _make_tuple(names, arena):
    ctor = f"({_args(names)},)" if len(names) == 1 else f"({_args(names)})"
    return Spec(None, ctor, f"o[{len(names) - 1}]", None)


def _arena_class(base, name, names, arena):
    """A class statement `class name(base, arena=arena): __slots__ = names` (None: no slots)."""
    import types

    def body(ns):
        if names is not None:
            ns["__slots__"] = tuple(names)

    return types.new_class(name, (base,), {"arena": arena}, body)


def _make_slotobj(names, arena):
    from . import _objarena

    return _class_spec(_arena_class(_objarena.SlotObj, "SlotObjRecord", names, arena), names, arena)


def _make_obj(names, arena):
    # Obj: dynamic attributes, set by keyword as in DESIGN.md (Point(x=1, y=2)).
    from . import _objarena

    cls = _arena_class(_objarena.Obj, "ObjRecord", None, arena)
    kw = ", ".join(f"{f}=a{i}" for i, f in enumerate(names))
    return Spec(cls, f"C({kw})", f"o.{names[-1]}", f"o.{names[0]} = a0", arena)


def _has(attr):
    def available():
        from . import _objarena

        return hasattr(_objarena, attr)
    return available


def _register_builtin_kinds():
    register(Kind("dict", "class with __dict__, Python __init__", _make_dict_class))
    register(Kind("slots", "class with __slots__, Python __init__", _make_slots_class))
    register(Kind("dataclass", "@dataclass(slots=True)", _make_dataclass))
    register(Kind("namedtuple", "collections.namedtuple", _make_namedtuple))
    register(Kind("tuple", "plain tuple", _make_tuple))
    register(Kind("SlotObj", "objarena.SlotObj", _make_slotobj, arena=True,
                  available=_has("SlotObj")))
    # Listed once the extension provides it (not yet measured against a real Obj).
    register(Kind("Obj", "objarena.Obj", _make_obj, arena=True, available=_has("Obj")))


_register_builtin_kinds()


def available_kinds():
    return [k.name for k in KINDS.values() if k.available()]


# --- measuring --------------------------------------------------------------------------

def _compile(spec, names):
    args = _args(names)
    read = "; ".join([spec.read] * UNROLL)
    src = (
        f"def build(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = {spec.ctor}\n"
        f"def build_base(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"        holder[i] = a0\n"
        f"def read(holder):\n"
        f"    for o in holder:\n"
        f"        {read}\n"
        f"def loop(holder, a0):\n"
        f"    for o in holder:\n"
        f"        pass\n"
    )
    if spec.write is not None:
        src += (
            f"def write(holder, a0):\n"
            f"    for o in holder:\n"
            f"        {'; '.join([spec.write] * UNROLL)}\n"
        )
    ns = {}
    exec(compile(src, f"<objarena.compare {spec.ctor}>", "exec"), ns)
    return ns


class _Collectors:
    """Context manager: CPython's gc and the arena's automatic collection off (or on)."""

    def __init__(self, arena=None, enabled=False):
        self.arena, self.enabled = arena, enabled

    def __enter__(self):
        self.saved = gc.isenabled()
        (gc.enable if self.enabled else gc.disable)()
        a = self.arena
        self.arena_saved = a.isenabled() if a is not None and hasattr(a, "isenabled") else None
        if self.arena_saved is not None:
            (a.enable if self.enabled else a.disable)()
        return self

    def __exit__(self, *exc):
        (gc.enable if self.saved else gc.disable)()
        if self.arena_saved is not None:
            (self.arena.enable if self.arena_saved else self.arena.disable)()


def _best(fn, repeat, arena=None, collectors=False):
    """Best wall time (ns) of fn() over `repeat` runs.

    collectors=False: CPython's gc and the arena's automatic collection are off while
    timing, as timeit does; True: both on, as in a program.
    """
    best = None
    with _Collectors(arena, collectors):
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            fn()
            t = time.perf_counter_ns() - t0
            best = t if best is None or t < best else best
    return best


def _gc_ms(repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        gc.collect()
        t = time.perf_counter_ns() - t0
        best = t if best is None or t < best else best
    return best / 1e6


def _new_arena(kind, fields):
    if not kind.arena:
        return None
    from . import _objarena

    return _objarena.Arena(name=f"compare-{kind.name}-{fields}")


def _measure(kind, fields, n, repeat, rss, gc_base_ms):
    from . import _measure as m
    from . import footprint

    names = tuple(f"f{i}" for i in range(fields))
    values = tuple(range(fields))  # small ints: shared by CPython, cost nothing
    row = dict.fromkeys(ROW_KEYS)
    row.update(kind=kind.name, label=kind.label, arena=kind.arena, fields=fields, n=n)

    # Memory, on a fresh class (and a fresh Arena for arena kinds).
    spec = kind.make(names, _new_arena(kind, fields))
    code = _compile(spec, names)
    build = code["build"]
    holder = [None] * n
    gc.collect()
    st0 = spec.arena.stats() if spec.arena is not None else None
    with _Collectors(spec.arena, enabled=False):
        _, raw, blocks = m.traced(lambda: build(holder, spec.cls, *values))
    row["traced_bytes"] = raw / n
    if spec.arena is not None:
        st1 = spec.arena.stats()
        row["true_bytes"] = (st1["bytes_reserved"] - st0["bytes_reserved"]) / n
        row["in_use_bytes"] = (st1["bytes_in_use"] - st0["bytes_in_use"]) / n
    else:
        row["true_bytes"] = blocks / n
        row["in_use_bytes"] = raw / n
    row["getsizeof"] = sys.getsizeof(holder[0])
    row["footprint"] = footprint(holder[0])
    holder = None  # frees the instances

    # Times.
    holder = [None] * n
    a = spec.arena
    base = _best(lambda: code["build_base"](holder, spec.cls, *values), repeat, a)
    for key, collectors in (("create_gc_ns", True), ("create_ns", False)):
        best = None
        for _ in range(repeat):
            holder = None
            gc.collect()
            holder = [None] * n
            t = _best(lambda: build(holder, spec.cls, *values), 1, a, collectors)
            best = t if best is None or t < best else best
        row[key] = max(0.0, (best - base) / n)
    loop = _best(lambda: code["loop"](holder, values[0]), repeat, a)
    t = _best(lambda: code["read"](holder), repeat, a)
    row["read_ns"] = max(0.0, (t - loop) / (n * UNROLL))
    if "write" in code:
        t = _best(lambda: code["write"](holder, values[0]), repeat, a)
        row["write_ns"] = max(0.0, (t - loop) / (n * UNROLL))
    row["gc_ms"] = _gc_ms(repeat)
    row["gc_ns_per_obj"] = max(0.0, (row["gc_ms"] - gc_base_ms) * 1e6 / n)
    collect = getattr(spec.arena, "collect", None)
    if collect is not None:
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            collect()
            t = time.perf_counter_ns() - t0
            best = t if best is None or t < best else best
        row["arena_collect_ms"] = best / 1e6
    holder = None  # frees the instances
    gc.collect()

    if rss:
        row["rss_bytes"] = _rss_in_child(kind.name, fields, n)
    return row


def _rss_child(kind_name, fields, n):
    """Entry point of the child process: print RSS delta / n for building n instances."""
    from . import _measure as m

    kind = KINDS[kind_name]
    names = tuple(f"f{i}" for i in range(fields))
    values = tuple(range(fields))
    spec = kind.make(names, _new_arena(kind, fields))
    build = _compile(spec, names)["build"]
    holder = [None] * n
    gc.collect()
    gc.disable()
    if spec.arena is not None and hasattr(spec.arena, "disable"):
        spec.arena.disable()
    r0 = m.rss_bytes()
    build(holder, spec.cls, *values)
    r1 = m.rss_bytes()
    print("none" if r0 is None or r1 is None else (r1 - r0) / n)


def _rss_in_child(kind_name, fields, n):
    import subprocess

    from . import _measure as m

    if m.rss_bytes() is None:
        return None
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = f"from objarena.compare import _rss_child; _rss_child({kind_name!r}, {fields}, {n})"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        return float(out.stdout.split()[-1])
    except (ValueError, IndexError):
        return None


def _check_fields(fields):
    if isinstance(fields, bool):
        raise TypeError("fields must be an int or a sequence of ints")
    if isinstance(fields, int):
        fields = [fields]
    try:
        fields = list(fields)
    except TypeError:
        raise TypeError("fields must be an int or a sequence of ints") from None
    if not fields:
        raise ValueError("fields must not be empty")
    for f in fields:
        if isinstance(f, bool) or not isinstance(f, int):
            raise TypeError(f"fields must be ints, not {type(f).__name__}")
        if not 1 <= f <= 250:
            raise ValueError(f"fields must be between 1 and 250, got {f}")
    return fields


def resolve_kinds(kinds):
    """Registry names (case-insensitive) -> list of names; ValueError if unknown/unavailable."""
    avail = available_kinds()
    if kinds is None:
        return avail
    if isinstance(kinds, str):
        kinds = [kinds]
    lower = {k.lower(): k for k in KINDS}
    out = []
    for k in kinds:
        if not isinstance(k, str):
            raise TypeError(f"kinds must be names (str), not {type(k).__name__}")
        name = lower.get(k.lower())
        if name is None:
            raise ValueError(f"unknown kind {k!r}; choose from {', '.join(avail)}")
        if name not in avail:
            raise ValueError(f"kind {name!r} is not available in this build "
                             f"(available: {', '.join(avail)})")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("kinds must not be empty")
    return out


def compare(fields=2, n=100_000, kinds=None, *, repeat=5, rss=True, progress=None):
    """Measure n instances of each kind, for each field count; return a list of rows.

    fields:   an int or a sequence of ints (1..250): fields per instance.
    n:        instances per measurement (>= 1).
    kinds:    registry names (see ``KINDS``), case-insensitive; None: every available kind.
    repeat:   timed runs per figure (the best is kept).
    rss:      also measure the resident-memory delta in a fresh child process.
    progress: None, or a callable receiving one-line progress messages.

    See the module docstring for the row keys and how each figure is measured.
    """
    fields = _check_fields(fields)
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be an int >= 1, got {repeat!r}")
    names = resolve_kinds(kinds)
    gc.collect()
    gc_base_ms = _gc_ms(max(repeat, 3))
    rows = []
    total = len(names) * len(fields)
    for f in fields:
        for name in names:
            if progress is not None:
                progress(f"[{len(rows) + 1}/{total}] {name}, {f} field{'s' if f != 1 else ''}, "
                         f"n={n:,}")
            rows.append(_measure(KINDS[name], f, n, repeat, rss, gc_base_ms))
    return rows


# --- reporting --------------------------------------------------------------------------

COLUMNS = (
    # key, header, format
    ("kind", "kind", "{}"),
    ("fields", "fields", "{}"),
    ("getsizeof", "getsizeof", "{}"),
    ("footprint", "footprint", "{:.0f}"),
    ("true_bytes", "true B", "{:.1f}"),
    ("in_use_bytes", "in use B", "{:.1f}"),
    ("rss_bytes", "RSS B", "{:.1f}"),
    ("create_ns", "create ns", "{:.1f}"),
    ("create_gc_ns", "+gc ns", "{:.1f}"),
    ("read_ns", "read ns", "{:.1f}"),
    ("write_ns", "write ns", "{:.1f}"),
    ("gc_ms", "gc ms", "{:.2f}"),
    ("arena_collect_ms", "arena gc ms", "{:.2f}"),
)
OPTIONAL_COLUMNS = ("arena_collect_ms",)  # shown only when some row has a value


def format_table(rows):
    """The rows as an aligned text table (one line per row)."""
    cols = [c for c in COLUMNS
            if c[0] not in OPTIONAL_COLUMNS or any(r.get(c[0]) is not None for r in rows)]
    head = [h for _, h, _ in cols]
    body = []
    for r in rows:
        line = []
        for key, _, fmt in cols:
            v = r.get(key)
            line.append("-" if v is None else fmt.format(v))
        body.append(line)
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i])
              for i in range(len(head))]

    def fmt_line(cells):
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(out).rstrip()

    lines = [fmt_line(head), "  ".join("-" * w for w in widths)]
    lines += [fmt_line(b) for b in body]
    return "\n".join(lines)


def notes(rows):
    """What each column means, as a list of lines."""
    n = rows[0]["n"] if rows else 0
    lines = [
        f"n = {n:,} instances per row; field values are small ints that CPython shares.",
        "getsizeof  sys.getsizeof(one instance).  For native classes it misses the instance's",
        "           __dict__ or values array (3.11+: the values; 3.13: the inline values),",
        "           so a dict class looks almost as small as a __slots__ class.",
        "footprint  objarena.footprint(one instance): arena objects: block + share of the page;",
        "           native: sys.getsizeof rounded to obmalloc's 16-byte blocks + the dict/values.",
        "true B     bytes per instance.  Native: tracemalloc traces of the n instances, each",
        "           rounded up to its obmalloc block.  Arena: growth of a fresh Arena's",
        "           bytes_reserved / n (whole 1 MiB chunks: mostly slack when n is small).",
        "in use B   native: tracemalloc traced-memory growth / n (bytes requested);",
        "           arena: growth of bytes_in_use / n (the blocks themselves).",
        "RSS B      growth of resident memory / n in a fresh child process (noisy cross-check).",
        "create ns  time to create one instance; read/write ns: one attribute read/write",
        "           (tuple: index; '-': immutable).  Best of several runs, collectors off.",
        "+gc ns     creation with CPython's gc and the arena's collector on, as in a program.",
        "gc ms      one full gc.collect() with the n instances alive.  Arena objects are not",
        "           tracked by CPython's gc, so it does not pay for them.",
    ]
    if any(r.get("arena_collect_ms") is not None for r in rows):
        lines.append("arena gc ms  one Arena.collect() with the n instances alive (arena kinds).")
    else:
        lines.append("           (The arena's own collector comes later; it will be timed beside.)")
    return lines


def slots_saving(rows):
    """For each field count with both 'dict' and 'slots' rows: what __slots__ saves."""
    out = []
    by = {(r["kind"], r["fields"]): r for r in rows}
    for f in sorted({r["fields"] for r in rows}):
        d, s = by.get(("dict", f)), by.get(("slots", f))
        if d is None or s is None or not d["true_bytes"]:
            continue
        out.append({
            "fields": f,
            "dict_true_bytes": d["true_bytes"],
            "slots_true_bytes": s["true_bytes"],
            "saving": 1 - s["true_bytes"] / d["true_bytes"],
            "getsizeof_saving": 1 - s["getsizeof"] / d["getsizeof"],
        })
    return out


def slots_saving_lines(rows):
    impl = f"{sys.implementation.name} {sys.version.split()[0]}"
    lines = []
    for s in slots_saving(rows):
        lines.append(
            f"On {impl}, a {s['fields']}-field __slots__ instance takes "
            f"{s['slots_true_bytes']:.0f} B against {s['dict_true_bytes']:.0f} B with a "
            f"__dict__: __slots__ saves {100 * s['saving']:.0f}% (the often-quoted figure is "
            f"40-60%; sys.getsizeof alone would say {100 * s['getsizeof_saving']:.0f}%)."
        )
    return lines


def report(rows):
    """Table, notes and the __slots__ statement, as one string."""
    parts = [format_table(rows), ""]
    saving = slots_saving_lines(rows)
    if saving:
        parts += saving + [""]
    parts += notes(rows)
    return "\n".join(parts)


def to_json(rows):
    """The documented JSON document (a dict) for rows."""
    from ._version import __version__

    return {
        "schema": 1,
        "objarena": __version__,
        "python": sys.version,
        "implementation": sys.implementation.name,
        "platform": sys.platform,
        "columns": {key: _COLUMN_DOC[key] for key in ROW_KEYS},
        "rows": rows,
        "slots_saving": slots_saving(rows),
    }


_COLUMN_DOC = {
    "kind": "registry name of the kind",
    "label": "what the kind is",
    "arena": "true for objarena kinds",
    "fields": "fields per instance",
    "n": "instances built",
    "getsizeof": "sys.getsizeof of one instance",
    "footprint": "objarena.footprint of one instance (estimate for native kinds)",
    "true_bytes": "bytes per instance: native: tracemalloc traces rounded to allocator blocks / n; "
                  "arena: growth of a fresh Arena's bytes_reserved / n",
    "in_use_bytes": "native: tracemalloc traced-memory growth / n; arena: growth of bytes_in_use / n",
    "traced_bytes": "tracemalloc traced-memory growth / n, every kind",
    "rss_bytes": "resident-memory growth / n in a fresh child process (null if unavailable)",
    "create_ns": "ns per instance creation, collectors off",
    "create_gc_ns": "ns per instance creation with CPython's gc and the arena's collector on",
    "read_ns": "ns per attribute read",
    "write_ns": "ns per attribute write (null: immutable)",
    "gc_ms": "ms of one gc.collect() with the n instances alive",
    "gc_ns_per_obj": "(gc_ms - gc_ms with nothing alive) / n, in ns",
    "arena_collect_ms": "ms of Arena.collect() with the n instances alive (null: no collector yet)",
}
