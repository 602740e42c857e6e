"""What N small records really cost, as native Python objects and as objarena objects.

    objarena.compare(fields=2, n=100_000, kinds=None, typed=False) -> list of row dicts
    python -m objarena compare [--fields 2 5 10] [--n N] [--kinds ...] [--typed] [--json] [--plot FILE.png]

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

``typed=True`` (``--typed``) measures a numeric record instead: every field holds a float
of its own (distinct per record, as measurements are), so the bytes include the float
objects wherever the record holds them boxed; the kinds are the records people use for
numbers -- __slots__, dataclass, msgspec.Struct, recordclass, SlotObj with object fields --
beside a SlotObj whose fields are typed (``f64``), which stores the numbers in the object.

``compare`` returns one dict per (field count, kind) with the keys ``ROW_KEYS``;
``to_json`` wraps the rows in the JSON document that ``--json`` prints, whose "columns"
describe every key in one line; ``report`` is the text that the command prints and
``plot`` draws the rows as bar charts (needs matplotlib).  docs/compare.md documents each
figure with its type and unit, where sys.getsizeof misleads, and the JSON document.

To add a kind, register one ``Kind`` in ``KINDS`` (see ``_register_builtin_kinds``).
"""
import gc
import os
import sys
import time

__all__ = ["compare", "KINDS", "Kind", "ROW_KEYS", "SCHEMA_VERSION", "format_table", "notes",
           "plot", "report", "slots_saving", "to_json"]

ROW_KEYS = (
    "kind", "label", "arena", "fields", "n",
    "getsizeof", "footprint", "true_bytes", "in_use_bytes", "traced_bytes", "rss_bytes",
    "create_ns", "create_gc_ns", "read_ns", "write_ns", "gc_ms", "gc_ns_per_obj",
    "arena_collect_ms",
)

SCHEMA_VERSION = 1  # of the to_json document; docs/compare.md says when it changes

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
    runs:      the runs the kind takes part in: "default", "typed" (compare(typed=True)),
               or "both".
    """

    __slots__ = ("name", "label", "make", "arena", "available", "runs")

    def __init__(self, name, label, make, arena=False, available=None, runs="default"):
        self.name, self.label, self.make, self.arena = name, label, make, arena
        self.available = available or (lambda: True)
        self.runs = runs

    def __repr__(self):
        return f"Kind({self.name!r})"


KINDS = {}  # name -> Kind, in table order


def register(kind):
    KINDS[kind.name] = kind
    return kind


def _args(names):
    return ", ".join(f"a{i}" for i in range(len(names)))


def generated_init(names):
    """A Python ``__init__(self, f0, f1, ...)`` that sets the attributes."""
    src = f"def __init__(self, {', '.join(names)}):\n"
    src += "".join(f"    self.{f} = {f}\n" for f in names)
    ns = {}
    exec(src, ns)
    return ns["__init__"]


def _class_spec(cls, names, arena=None, mutable=True):
    write = f"o.{names[0]} = a0" if mutable else None
    return Spec(cls, f"C({_args(names)})", f"o.{names[-1]}", write, arena)


def _make_dict_class(names, arena):
    cls = type("DictRecord", (), {"__init__": generated_init(names)})
    return _class_spec(cls, names)


def _make_slots_class(names, arena):
    cls = type("SlotsRecord", (), {"__slots__": tuple(names), "__init__": generated_init(names)})
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


def _arena_class(base, name, names, arena, annotations=None):
    """A class statement `class name(base, arena=arena): __slots__ = names` (None: no slots),
    the body holding `annotations` if given."""
    import types

    def body(ns):
        if names is not None:
            ns["__slots__"] = tuple(names)
        if annotations is not None:
            ns["__annotations__"] = dict(annotations)

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


def _make_typed(names, arena):
    from . import _objarena

    cls = _arena_class(_objarena.SlotObj, "TypedRecord", None, arena,
                       annotations={f: _objarena.f64 for f in names})
    return _class_spec(cls, names, arena)


def _make_msgspec(names, arena):
    import msgspec

    return _class_spec(msgspec.defstruct("MsgspecRecord", [(f, float) for f in names]), names)


def _make_recordclass(names, arena):
    import recordclass

    return _class_spec(recordclass.make_dataclass("RecordclassRecord", names), names)


def _imports_in_child(module):
    """True if a fresh interpreter (this one's executable) imports `module` and exits 0."""
    import subprocess

    try:
        return subprocess.run([sys.executable, "-c", f"import {module}"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_importable_cache = {}


def _importable(module):
    """available() for a kind that needs an optional package: True if it imports.

    On a debug interpreter (Py_DEBUG) the first import is tried in a child process: an
    extension whose types fail one of PyType_Ready's debug assertions aborts the process
    that imports it (recordclass 0.24's do, on CPython 3.11's debug build).
    """
    def available():
        if module in sys.modules:
            return sys.modules[module] is not None
        import importlib
        import importlib.util

        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):
            return False
        if hasattr(sys, "gettotalrefcount"):
            if module not in _importable_cache:
                _importable_cache[module] = _imports_in_child(module)
            if not _importable_cache[module]:
                return False
        try:
            importlib.import_module(module)
        except ImportError:
            return False
        return True
    return available


def _register_builtin_kinds():
    register(Kind("dict", "class with __dict__, Python __init__", _make_dict_class))
    register(Kind("slots", "class with __slots__, Python __init__", _make_slots_class,
                  runs="both"))
    register(Kind("dataclass", "@dataclass(slots=True)", _make_dataclass, runs="both"))
    register(Kind("namedtuple", "collections.namedtuple", _make_namedtuple))
    register(Kind("tuple", "plain tuple", _make_tuple))
    # msgspec.Struct: a C record type, tracked by CPython's gc unless every field holds
    # a scalar (then msgspec untracks the instance).
    register(Kind("msgspec", "msgspec.Struct", _make_msgspec,
                  available=_importable("msgspec"), runs="typed"))
    # Fixed fields and no GC header, like SlotObj, but without any collector: a cycle
    # through its instances is never freed.
    register(Kind("recordclass", "recordclass.dataobject (not tracked by any gc)",
                  _make_recordclass, available=_importable("recordclass"), runs="both"))
    register(Kind("SlotObj", "objarena.SlotObj", _make_slotobj, arena=True,
                  available=_has("SlotObj"), runs="both"))
    register(Kind("typed", "objarena.SlotObj, f64 fields (numbers in the object)", _make_typed,
                  arena=True, available=_has("f64"), runs="typed"))
    # Listed once the extension provides it (not yet measured against a real Obj).
    register(Kind("Obj", "objarena.Obj", _make_obj, arena=True, available=_has("Obj")))


_register_builtin_kinds()


def available_kinds(typed=False):
    """The kinds of the default run (typed=False) or of the typed run that can be measured
    here."""
    run = "typed" if typed else "default"
    return [k.name for k in KINDS.values() if k.runs in (run, "both") and k.available()]


# --- measuring --------------------------------------------------------------------------

def _compile(spec, names, typed=False):
    args = _args(names)
    read = "; ".join([spec.read] * UNROLL)
    # typed: a float of its own for every field of every record (made in the base loop
    # too, so that its cost is subtracted from creation).
    fresh = ("        " + "; ".join(f"a{k} = i + {k + 0.5}" for k in range(len(names)))
             + "\n") if typed else ""
    src = (
        f"def build(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"{fresh}"
        f"        holder[i] = {spec.ctor}\n"
        f"def build_base(holder, C, {args}):\n"
        f"    for i in range(len(holder)):\n"
        f"{fresh}"
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


TYPED_LABEL = "; a float of its own per field"


def _values(fields, typed):
    # default: small ints, shared by CPython, cost nothing; typed: floats (the loops
    # make a float of its own per field and record)
    return tuple(k + 0.5 for k in range(fields)) if typed else tuple(range(fields))


def _measure(kind, fields, n, repeat, rss, gc_base_ms, typed=False):
    from . import _measure as m
    from . import footprint

    names = tuple(f"f{i}" for i in range(fields))
    values = _values(fields, typed)
    row = dict.fromkeys(ROW_KEYS)
    row.update(kind=kind.name, label=kind.label + (TYPED_LABEL if typed else ""),
               arena=kind.arena, fields=fields, n=n)

    # Memory, on a fresh class (and a fresh Arena for arena kinds).
    spec = kind.make(names, _new_arena(kind, fields))
    code = _compile(spec, names, typed)
    build = code["build"]
    holder = [None] * n
    gc.collect()
    st0 = spec.arena.stats() if spec.arena is not None else None
    with _Collectors(spec.arena, enabled=False):
        _, raw, blocks = m.traced(lambda: build(holder, spec.cls, *values))
    row["traced_bytes"] = raw / n
    if spec.arena is not None:
        st1 = spec.arena.stats()
        in_use = st1["bytes_in_use"] - st0["bytes_in_use"]
        # tracemalloc sees the arena's blocks too; what it sees beyond them are objects
        # the records hold outside the arena (the boxed floats of a typed run).
        outside = max(0, blocks - in_use) if typed else 0
        row["true_bytes"] = (st1["bytes_reserved"] - st0["bytes_reserved"] + outside) / n
        row["in_use_bytes"] = (in_use + outside) / n
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
    with _Collectors(a):  # else gc.collect() would also collect the arena (its gc hook)
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
        row["rss_bytes"] = _rss_in_child(kind.name, fields, n, typed)
    return row


def _rss_child(kind_name, fields, n, typed=False):
    """Entry point of the child process: print RSS delta / n for building n instances."""
    from . import _measure as m

    kind = KINDS[kind_name]
    names = tuple(f"f{i}" for i in range(fields))
    values = _values(fields, typed)
    spec = kind.make(names, _new_arena(kind, fields))
    build = _compile(spec, names, typed)["build"]
    holder = [None] * n
    gc.collect()
    gc.disable()
    if spec.arena is not None and hasattr(spec.arena, "disable"):
        spec.arena.disable()
    r0 = m.rss_bytes()
    build(holder, spec.cls, *values)
    r1 = m.rss_bytes()
    print("none" if r0 is None or r1 is None else (r1 - r0) / n)


def _rss_in_child(kind_name, fields, n, typed=False):
    import subprocess

    from . import _measure as m

    if m.rss_bytes() is None:
        return None
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = (f"from objarena.compare import _rss_child; "
            f"_rss_child({kind_name!r}, {fields}, {n}, {typed!r})")
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


def resolve_kinds(kinds, typed=False):
    """Registry names (case-insensitive) -> list of names; ValueError if unknown/unavailable
    (in the default run, or in the typed run if `typed`)."""
    avail = available_kinds(typed)
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
            where = "the typed run" if typed else "this build"
            raise ValueError(f"kind {name!r} is not available in {where} "
                             f"(available: {', '.join(avail)})")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("kinds must not be empty")
    return out


def compare(fields=2, n=100_000, kinds=None, *, repeat=5, rss=True, progress=None,
            typed=False):
    """Measure n instances of each kind, for each field count; return a list of rows.

    fields:   an int or a sequence of ints (1..250): fields per instance.
    n:        instances per measurement (>= 1).
    kinds:    registry names (see ``KINDS``), case-insensitive; None: every available kind
              (of the typed run if `typed`).
    typed:    measure numeric records (a float of its own per field), with the typed
              SlotObj kind (module docstring).
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
    names = resolve_kinds(kinds, typed)
    gc.collect()
    gc_base_ms = _gc_ms(max(repeat, 3))
    rows = []
    total = len(names) * len(fields)
    for f in fields:
        for name in names:
            if progress is not None:
                progress(f"[{len(rows) + 1}/{total}] {name}, {f} field{'s' if f != 1 else ''}, "
                         f"n={n:,}")
            rows.append(_measure(KINDS[name], f, n, repeat, rss, gc_base_ms, typed))
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
    typed = any((r.get("label") or "").endswith(TYPED_LABEL) for r in rows)
    values = ("every field holds a float of its own (counted in the bytes where the record"
              "\n           holds it as an object; typed: stored in the record)") if typed else \
        "field values are small ints that CPython shares."
    lines = [
        f"n = {n:,} instances per row; {values}",
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
    return lines


SLOTS_CLAIM = (0.40, 0.60)  # the saving of __slots__ over __dict__ often quoted


def slots_saving(rows):
    """What __slots__ saves over a __dict__ class, for each field count with both rows.

    One dict per field count: the true bytes and sys.getsizeof of a "dict" and a "slots"
    instance, and the savings by either measure (a fraction of the dict instance: 0.4 is
    40%; negative when the __slots__ instance is the larger).
    """
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
            "dict_getsizeof": d["getsizeof"],
            "slots_getsizeof": s["getsizeof"],
            "getsizeof_saving": 1 - s["getsizeof"] / d["getsizeof"],
        })
    return out


def _saving_words(fraction):
    if fraction >= 0.005:
        return f"saves {100 * fraction:.0f}%"
    if fraction <= -0.005:
        return f"costs {-100 * fraction:.0f}% more"
    return "saves nothing"


def slots_saving_lines(rows):
    """The __slots__ against __dict__ statement, measured on this Python, as lines."""
    savings = slots_saving(rows)
    if not savings:
        return []
    low, high = SLOTS_CLAIM
    impl = f"{sys.implementation.name} {sys.version.split()[0]}"
    lines = [f"__slots__ against __dict__ on {impl} (true bytes per instance; the often-quoted "
             f"saving is {100 * low:.0f}-{100 * high:.0f}%):"]
    for s in savings:
        saving = s["saving"]
        verdict = ("within" if low - 0.005 <= saving <= high + 0.005
                   else "below" if saving < low else "above")
        lines.append(
            f"  {s['fields']} field{'s' if s['fields'] != 1 else ''}: "
            f"{s['slots_true_bytes']:.0f} B against {s['dict_true_bytes']:.0f} B: __slots__ "
            f"{_saving_words(saving)}, {verdict} that range"
        )
        lines.append(
            f"    (sys.getsizeof would say {s['slots_getsizeof']} B against "
            f"{s['dict_getsizeof']} B: {_saving_words(s['getsizeof_saving'])})."
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
        "schema": SCHEMA_VERSION,
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
    "arena_collect_ms": "ms of Arena.collect() with the n instances alive (null for native kinds)",
}


# --- plotting ---------------------------------------------------------------------------

PLOT_PANELS = (
    # key, title, unit
    ("true_bytes", "true bytes per instance", "bytes"),
    ("create_ns", "create one instance", "ns"),
    ("read_ns", "read one attribute", "ns"),
    ("write_ns", "write one attribute", "ns"),
    ("gc_ms", "gc.collect(), n instances alive", "ms"),
    ("arena_collect_ms", "Arena.collect(), n instances alive", "ms"),
)

PLOT_HINT = "pip install 'objarena[plot]'"


def _matplotlib():
    """matplotlib's (Figure, FigureCanvasAgg); ImportError saying how to install it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"plotting needs matplotlib, which is not installed: {PLOT_HINT}") from e
    return Figure, FigureCanvasAgg


def plot_format(path, supported):
    """The image format that ``plot`` writes to path: its suffix, or png when it has none.

    ValueError if that is not one of `supported` (matplotlib's Agg canvas's formats).
    """
    fmt = os.path.splitext(os.fspath(path))[1][1:].lower() or "png"
    if fmt not in supported:
        raise ValueError(f"cannot write {fmt!r} images; choose from {', '.join(sorted(supported))}")
    return fmt


def plot(rows, path):
    """Draw the rows as bar charts into one image file at path (PNG unless its suffix says).

    One panel per figure of ``PLOT_PANELS`` that some row has; in each, the rows are
    grouped by field count, one bar per kind.  Uses matplotlib's Agg canvas directly:
    pyplot and its global backend are left alone.
    """
    if not rows:
        raise ValueError("no rows to plot")
    figure_class, canvas_class = _matplotlib()
    fmt = plot_format(path, canvas_class.get_supported_filetypes())
    panels = [p for p in PLOT_PANELS if any(r[p[0]] is not None for r in rows)]
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    fields = sorted({r["fields"] for r in rows})
    by = {(r["kind"], r["fields"]): r for r in rows}
    ncols = 2
    nrows = -(-len(panels) // ncols)
    fig = figure_class(figsize=(6.4 * ncols, 3.4 * nrows + 1.0))
    canvas_class(fig)
    width = 0.8 / len(kinds)
    handles = {}
    for i, (key, title, unit) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for j, kind in enumerate(kinds):
            xs, heights = [], []
            for x, f in enumerate(fields):
                r = by.get((kind, f))
                if r is not None and r[key] is not None:
                    xs.append(x - 0.4 + width * (j + 0.5))
                    heights.append(r[key])
            if xs:
                bars = ax.bar(xs, heights, width, color=f"C{j % 10}", label=kind)
                handles.setdefault(kind, bars)
                if key == "true_bytes":
                    ax.bar_label(bars, fmt="%.0f", fontsize="x-small", rotation=90,
                                 padding=2)
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel(unit)
        ax.set_xlim(-0.5, len(fields) - 0.5)
        ax.set_xticks(range(len(fields)))
        ax.set_xticklabels([f"{f} field{'s' if f != 1 else ''}" for f in fields])
        ax.margins(y=0.15)
    fig.legend([handles[k] for k in kinds if k in handles],
               [k for k in kinds if k in handles], loc="lower center", ncol=min(len(kinds), 8))
    fig.suptitle(f"objarena compare: n = {rows[0]['n']:,} instances, "
                 f"{sys.implementation.name} {sys.version.split()[0]}")
    fig.tight_layout(rect=(0, 0.6 / fig.get_figheight(), 1, 1))
    fig.savefig(path, format=fmt, dpi=100)
