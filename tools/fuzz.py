#!/usr/bin/env python3
"""Coverage-guided fuzzing of objarena with atheris (libFuzzer for Python).

Each fuzz input is a byte string that a small interpreter (`Program`) reads as a
sequence of decisions: which classes to make (SlotObj or Obj, fields from
``__slots__`` or annotations, bases among the classes made so far, ``arena=``),
which hooks they get (``__del__``, ``__init__``, ``__reduce__``, ``__eq__`` that
mutates), and then which operations to run on them: calls (positional and
keyword, the vectorcall path, ``type.__call__`` with a keyword dict,
``C.__init__(obj, ...)``), attribute set/get/del, ``__dict__`` reads, writes and
replacement, pickle with every protocol, copy and deepcopy, ``__class__``
assignment, weak references with callbacks, links between objects (cycles) and
collections (``Arena.collect``, ``gc.collect``).  Names come from a pool of
plain, dunder, private, non-identifier and non-str names and of `str`
subclasses with hostile ``__hash__``/``__eq__`` (raising, flip-flopping,
always/never equal, colliding, equal to another field, mutating objects or
collecting while a lookup runs).

What counts as a failure (the input is saved as ``crash-*`` and the run ends):
- a crash, or any AddressSanitizer/UndefinedBehaviorSanitizer report (run it
  against the sanitized build, see below);
- ``objarena._testing.validate(arena)`` raising (an arena invariant broken),
  which the harness runs after every input on every arena it touched;
- a ``SystemError`` (CPython's signal of a C-level bug) from any operation;
- a difference from native ``__slots__``: for classes with plain names and
  no hooks, every operation is mirrored on a native class of the same shape
  and the results (value or exception type) must be the same.
Ordinary exceptions (TypeError, AttributeError, PicklingError, ...) that the
operations raise are expected and ignored.

Usage (from the repository root, with objarena and atheris installed)::

    python tools/fuzz.py --seconds 120            # fuzz for 2 minutes
    python tools/fuzz.py --runs 2000              # a fixed number of inputs
    python tools/fuzz.py --replay FILE...         # run inputs, print the program
    python tools/fuzz.py --seconds 600 --merge    # also add new coverage to the
                                                  # seed corpus (minimised)

The driver runs libFuzzer in a child process with a fresh working corpus (the
seed corpus ``tools/fuzz_corpus/`` is read, not written, unless --merge), then
prints a summary (runs, coverage, new inputs, failures with their reproducer
files) and exits non-zero when anything failed.  Extra libFuzzer flags go after
``--``.

The build to fuzz (what .ci/run's fuzz stage does): atheris 3.1.0 (manylinux
wheels for CPython 3.12 to 3.14; 3.0.0 is the last for 3.11) ships
``asan_with_fuzzer.so``, clang's ASan + UBSan runtime and libFuzzer in one
library.  Build objarena with clang, instrumented for libFuzzer's coverage and
linked without a sanitizer runtime, and preload that library::

    apt-get install clang-19 libclang-rt-19-dev
    pip install atheris==3.1.0
    CC=clang-19 LDSHARED="clang-19 -shared" OBJARENA_LDFLAGS= \
    OBJARENA_CFLAGS="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize=function
        -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1 -g" pip install .
    LD_PRELOAD="$(python -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so" \
    PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
        python tools/fuzz.py --seconds 120

libFuzzer then sees the C extension's edges as well as this harness's Python
ones.  (``-fno-sanitize=function``: clang 17+ checks the type of indirect calls
in C through a handler that atheris's older runtime lacks.)  The gcc build of
the asan stage, with gcc's libasan preloaded, runs too, but blind: that libasan
defines libFuzzer's coverage callbacks as well, and atheris then gets no
coverage at all (it says so at start).
"""
import argparse
import copy
import gc
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import types
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_CORPUS = os.path.join(HERE, "fuzz_corpus")
SAN_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:"
                    r"|SUMMARY: UndefinedBehaviorSanitizer")


# ---------------------------------------------------------------------------
# hostile names
# ---------------------------------------------------------------------------

class Hostile(str):
    """A str subclass whose __hash__/__eq__ do what `hmode`/`emode` say.

    State lives in the instance's __dict__ (a str subclass has one), so that a
    pickled or copied name keeps behaving the same way."""

    def __hash__(self):
        d = self.__dict__
        m = d.get("hmode", "str")
        d["nhash"] = d.get("nhash", 0) + 1
        if m == "raise":
            raise KeyError("hostile __hash__")
        if m == "const":
            return 7
        if m == "other":
            return str.__hash__(d.get("other", ""))
        if m == "flip":
            return str.__hash__(self) + (d["nhash"] & 1)
        return str.__hash__(self)

    def __eq__(self, other):
        d = self.__dict__
        m = d.get("emode", "str")
        d["neq"] = d.get("neq", 0) + 1
        if m == "raise":
            raise ValueError("hostile __eq__")
        if m == "flip":
            return d["neq"] % 2 == 1 and str.__eq__(self, other)
        if m == "always":
            return True
        if m == "never":
            return False
        if m == "other":
            return str.__eq__(d.get("other", ""), other) or str.__eq__(self, other)
        if m == "notimpl":
            return NotImplemented
        if m == "badbool":
            return BadBool()
        if m == "mutate":
            hook = ACTIVE.get("mutate")
            if hook is not None:
                ACTIVE["mutate"] = None   # once per name, no runaway recursion
                try:
                    hook()
                finally:
                    ACTIVE["mutate"] = hook
            return str.__eq__(self, other)
        return str.__eq__(self, other)

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented or isinstance(r, BadBool) else not r

    def __lt__(self, other):
        if self.__dict__.get("emode") == "raise":
            raise ValueError("hostile __lt__")
        return str.__lt__(self, other)

    def __repr__(self):
        return f"H({str.__repr__(self)}, {self.__dict__.get('hmode', 'str')}, " \
               f"{self.__dict__.get('emode', 'str')})"


class BadBool:
    def __bool__(self):
        raise RuntimeError("hostile __bool__")


ACTIVE = {"mutate": None}   # the current program's mutation hook, for Hostile

PLAIN = ("a", "b", "c", "x", "y", "_p", "__q", "__dict__", "__weakref__", "__class__",
         "__init__", "__slots__", "__module__", "__reduce__", "__getstate__",
         "__setstate__", "__new__", "__del__", "__eq__", "__hash__", "__match_args__",
         "__qualname__", "__doc__", "1bad", "", "not id", "\xe9t\xe9", "__", "self")
NONSTR = (1, b"a", None, ("a",), 2.5)
HMODES = ("str", "str", "raise", "const", "other", "flip")
EMODES = ("str", "str", "raise", "flip", "always", "never", "other", "notimpl",
          "badbool", "mutate")


# ---------------------------------------------------------------------------
# the interpreter
# ---------------------------------------------------------------------------


# What SlotObj classes have and native __slots__ classes lack, by design
# (docs/api.md): __match_args__ from the metaclass; __setstate__, so that a
# state is restored through the fields' descriptors and never through a
# __setattr__ override (frozen dataclasses); __slotnames__ for copyreg.
BY_DESIGN = frozenset({"__match_args__", "__setstate__", "__slotnames__"})

class Bug(Exception):
    """An invariant of objarena broken: the fuzzer reports the input."""


class NativeUnset:
    __slots__ = ()


UNSET = NativeUnset()
GRAVEYARD = []   # resurrected objects; cleared between inputs


class Program:
    """One fuzz input, read as decisions from a FuzzedDataProvider."""

    MAX_CLASSES = 4
    MAX_OPS = 40

    def __init__(self, fdp, log=None):
        import objarena
        self.oa = objarena
        self.fdp = fdp
        self.log = log            # list of lines (replay) or None
        self.arenas = [objarena.default_arena]
        self.classes = []         # (cls, native twin or None, names)
        self.objs = []            # (obj, twin or None)
        self.refs = []
        self.dicts = []           # dicts handed to calls, for hooks to empty
        self.thresholds = {}      # arena -> its thresholds before threshold_op
        self.depth = 0            # calls made from hooks, nested

    # -- decisions ---------------------------------------------------------
    def int(self, n):
        return self.fdp.ConsumeIntInRange(0, n - 1) if n > 1 else 0

    def pick(self, seq):
        return seq[self.int(len(seq))]

    def say(self, line):
        if self.log is not None:
            self.log.append(line)

    def name(self, plain_only=False, fields=()):
        r = self.int(12 if not plain_only else 1)
        if r == 0 or (fields and r < 4):
            pool = fields if fields and r else PLAIN
            return self.pick(pool) if pool else "a"
        if r < 4 or plain_only:
            return self.pick(PLAIN)
        if r == 4:
            return self.pick(NONSTR)
        base = self.pick(fields) if fields and self.int(2) else self.pick(PLAIN[:7])
        h = Hostile(str(base) if isinstance(base, str) else "a")
        h.hmode = self.pick(HMODES)
        h.emode = self.pick(EMODES)
        if "other" in (h.hmode, h.emode):
            h.other = self.pick(fields or PLAIN[:5])
        return h

    def value(self):
        r = self.int(8)
        if r == 0 and self.objs:
            return self.pick(self.objs)[0]
        if r == 1:
            return [self.pick(self.objs)[0]] if self.objs else []
        if r == 2:
            return self.fdp.ConsumeInt(2)
        if r == 3:
            return self.fdp.ConsumeUnicodeNoSurrogates(4)
        if r == 4:
            return Hook(self)
        if r == 5 and self.classes:
            return self.pick(self.classes)[0]
        if r == 6:
            return {self.name(): self.int(3)}
        return None

    # -- classes -----------------------------------------------------------
    def make_class(self):
        oa = self.oa
        kind = self.int(3)                  # SlotObj, Obj, subclass of one made
        hooks = self.int(4) == 0
        plain = not hooks and self.int(2) == 0
        nf = self.int(4)
        fields = tuple(self.name(plain_only=plain) for _ in range(nf))
        if self.int(5) == 0:
            fields += ("__weakref__",)
        bases_made = [c for c in self.classes]
        if kind == 2 and bases_made:
            base, btwin, bnames = self.pick(bases_made)
        else:
            base, btwin, bnames = (oa.SlotObj if kind == 0 else oa.Obj), None, ()
        ns = {"__module__": __name__}
        by_annotations = self.int(4) == 0 and issubclass(base, oa.SlotObj)
        if by_annotations:
            ns["__annotations__"] = {f: int for f in fields}
        else:
            if self.int(6) == 0 and fields:
                fields = fields[:1]           # __slots__ = "name", a single string
                ns["__slots__"] = fields[0]
            else:
                ns["__slots__"] = fields
        if hooks:
            self.add_hooks(ns)
        kw = {}
        if self.int(4) == 0:
            if len(self.arenas) < 3 and self.int(2):
                self.arenas.append(oa.Arena(name="fuzz", max_bytes=self.pick((0, 1 << 16, 1 << 20))
                                            or None))
            kw["arena"] = self.pick(self.arenas + [1])
        name = self.pick(("R", "__R", "_", "Rec"))
        self.say(f"class {name}({base.__name__}, {kw}): {ns}")
        try:
            cls = type(base)(name, (base,), ns, **kw)
        except Exception as e:       # noqa: BLE001 - expected errors
            self.expect(e)
            self.say(f"  -> {type(e).__name__}: {e}")
            return
        twin = None
        allnames = tuple(bnames) + tuple(_mangle(name, f) for f in fields
                                         if f != "__weakref__")
        if (plain and not kw and issubclass(cls, oa.SlotObj)
                and (kind != 2 or btwin is not None) and not by_annotations
                and all(type(f) is str for f in allnames)):
            twin = self.native_twin(name, ns, btwin, fields, allnames)
        self.classes.append((cls, twin, allnames))

    def native_twin(self, name, ns, btwin, fields, allnames):
        """A native __slots__ class of the same shape and the same generated
        __init__ as SlotObj's, or None if native refuses the class."""
        params = "".join(f", {f}=UNSET" for f in allnames)
        body = "".join(f"\n    if {f} is not UNSET: self.{f} = {f}" for f in allnames)
        scope = {"UNSET": UNSET}
        try:
            exec(f"def __init__(self{params}):{body or chr(10) + '    pass'}", scope)
            tns = dict(ns, __init__=scope["__init__"])
            return type(name, (btwin,) if btwin is not None else (), tns)
        except Exception:   # noqa: BLE001 - not comparable
            return None

    def add_hooks(self, ns):
        prog = self
        which = self.int(8)
        if which & 1:
            mode = self.int(4)

            def __del__(self):
                if mode == 0:
                    GRAVEYARD.append(self)
                elif mode == 1:
                    raise RuntimeError("hostile __del__")
                elif mode == 2:
                    prog.mutate()
                else:
                    prog.collect_some()
            ns["__del__"] = __del__
        if which & 2:
            call_super = self.int(2)

            def __init__(self, *args, **kwargs):
                if call_super:
                    super(type(self), self).__init__(*args, **kwargs)
                prog.mutate()
            ns["__init__"] = __init__
        if which & 4:
            r = self.int(3)
            if r == 0:
                def __reduce__(self):
                    return (type(self).__new__, (type(self),), None)
            elif r == 1:
                def __reduce__(self):
                    prog.mutate()
                    return object.__reduce__(self)
            else:
                def __reduce__(self):
                    return (type(self), ())
            ns["__reduce__"] = __reduce__
        if self.int(3) == 0:
            def __eq__(self, other):
                prog.mutate()
                return self is other
            ns["__eq__"] = __eq__
            ns["__hash__"] = object.__hash__

    # -- side effects for hooks ---------------------------------------------
    def mutate(self):
        """What a hostile hook does: change some object, maybe collect."""
        if not self.objs:
            return
        obj, _ = self.objs[self.int(len(self.objs))]
        r = self.int(7)
        try:
            if r == 6 and self.classes and self.depth < 3:
                # A hook that makes objects: re-entrant calls, allocations
                # (and so collections) inside calls, copies, collections.
                self.depth += 1
                try:
                    self.call()
                finally:
                    self.depth -= 1
            elif r == 5 and self.dicts:
                self.pick(self.dicts).clear()
            elif r == 0:
                self.setattr(obj, self.name(), self.value(), mirror=False)
            elif r == 1:
                delattr(obj, self.pick(PLAIN[:5]))
            elif r == 2:
                obj.__dict__.clear()
            elif r == 3:
                self.collect_some()
            else:
                self.objs.pop()
        except Exception as e:   # noqa: BLE001
            self.expect(e)

    def collect_some(self):
        r = self.int(3)
        if r == 0:
            gc.collect()
        else:
            self.pick(self.arenas).collect(self.int(3))

    # -- checks --------------------------------------------------------------
    def expect(self, e):
        if isinstance(e, SystemError):
            raise Bug(f"SystemError: {e}") from e
        if isinstance(e, AssertionError) and "invariant" in str(e):
            raise Bug(f"arena invariant: {e}") from e

    def outcome(self, fn):
        try:
            return ("ok", fn())
        except Exception as e:   # noqa: BLE001
            self.expect(e)
            return ("exc", type(e))

    def compare(self, what, got, want):
        """Results of objarena and native must agree (value or exception type)."""
        if want is None:
            return
        # Values are compared when both are plain (ints, strs, None); other
        # results (bound methods, descriptors) only as "no exception".
        g = got if got[0] == "exc" else ("ok", got[1] if _plain(got[1]) else None)
        w = want if want[0] == "exc" else ("ok", want[1] if _plain(want[1]) else None)
        if g != w:
            raise Bug(f"{what}: objarena gave {got!r}, native __slots__ gave {want!r}")

    def validate(self):
        from objarena import _testing
        for a in self.arenas:
            try:
                _testing.validate(a)
            except AssertionError as e:
                raise Bug(f"arena invariant broken: {e}") from e

    # -- operations ------------------------------------------------------------
    def call(self):
        cls, twin, names = self.pick(self.classes)
        nargs = self.int(4)
        args = [self.value() if twin is None else self.int(9) for _ in range(nargs)]
        kw = {}
        for _ in range(self.int(4)):
            k = self.name(plain_only=twin is not None, fields=names)
            kw[k] = self.value() if twin is None else self.int(9)
        how = self.int(4)
        self.say(f"call#{how} {cls.__name__}(*{args!r}, **{kw!r})")
        def run(c):
            if how == 0:
                return c(*args, **kw)
            if how == 1:
                return type.__call__(c, *args, **kw)
            if how == 2:
                o = c.__new__(c)
                c.__init__(o, *args, **kw)
                return o

            o = c()
            o.__init__(*args, **kw)
            return o
        if any(type(k) is not str for k in kw):
            twin = None      # non-str keywords: Python refuses them at the call
        got = self.outcome(lambda: run(cls))
        want = self.outcome(lambda: run(twin)) if twin is not None else None
        self.compare(f"call {cls.__name__}", (got[0], None) if got[0] == "ok" else got,
                     (want[0], None) if want and want[0] == "ok" else want)
        if got[0] == "ok":
            obj = got[1]
            tw = want[1] if want and want[0] == "ok" else None
            if tw is not None:
                self.compare_fields(obj, tw, names)
            self.objs.append((obj, tw))

    def compare_fields(self, obj, tw, names):
        for n in names:
            self.compare(f"field {n!r}", self.outcome(lambda: getattr(obj, n)),
                         self.outcome(lambda: getattr(tw, n)))

    def setattr(self, obj, name, value, mirror=True, twin=None):
        got = self.outcome(lambda: setattr(obj, name, value))
        if mirror and twin is not None:
            self.compare(f"setattr {name!r}", got,
                         self.outcome(lambda: setattr(twin, name, value)))
        return got

    def attr_op(self):
        obj, tw = self.pick(self.objs)
        names = getattr(type(obj), "__match_args__", ()) or ("a",)
        plain = tw is not None
        name = self.name(plain_only=plain, fields=tuple(names) if plain else ())
        op = self.int(3)
        if name in BY_DESIGN and name not in names:
            tw = None       # SlotObj classes have these, by design
        self.say(f"attr#{op} {type(obj).__name__} {name!r}")
        if op == 0:
            value = self.int(9) if plain else self.value()
            self.setattr(obj, name, value, twin=tw)
        elif op == 1:
            got = self.outcome(lambda: getattr(obj, name))
            if tw is not None:
                self.compare(f"getattr {name!r}", got, self.outcome(lambda: getattr(tw, name)))
        else:
            got = self.outcome(lambda: delattr(obj, name))
            if tw is not None:
                self.compare(f"delattr {name!r}", got, self.outcome(lambda: delattr(tw, name)))

    def dict_op(self):
        i = self.int(len(self.objs))
        obj, tw = self.objs[i]
        op = self.int(7)
        self.say(f"dict#{op} {type(obj).__name__}")
        try:
            if op >= 5:
                # __setstate__ called with a dict of its own (pickle makes a
                # fresh one): a hook may empty it while it is read.
                state = {self.name(): self.value() for _ in range(1 + self.int(3))}
                self.dicts.append(state)
                if tw is not None:
                    # The native twin has no __setstate__ of its own to take the
                    # same state: from here the two are no longer compared.
                    self.objs[i] = (obj, None)
                obj.__setstate__((None, state) if op == 5 else state)
            elif op == 0:
                d = obj.__dict__
                d[self.name()] = self.value()
            elif op == 1:
                obj.__dict__ = {self.name(): self.value() for _ in range(self.int(3))}
            elif op == 2:
                d = vars(obj)
                d.pop(self.pick(list(d) or ["a"]), None)
                GRAVEYARD.append(d) if self.int(2) else None
            elif op == 3:
                del obj.__dict__
            else:
                obj.__dict__.update({self.name(): obj})
        except Exception as e:   # noqa: BLE001
            self.expect(e)

    def pickle_op(self):
        obj, tw = self.pick(self.objs)
        op = self.int(pickle.HIGHEST_PROTOCOL + 3)
        self.say(f"pickle#{op} {type(obj).__name__}")
        def run(o):
            if op <= pickle.HIGHEST_PROTOCOL:
                return pickle.loads(pickle.dumps(o, op))
            if op == pickle.HIGHEST_PROTOCOL + 1:
                return copy.copy(o)
            return copy.deepcopy(o)
        got = self.outcome(lambda: run(obj))
        if got[0] == "ok":
            self.objs.append((got[1], None))
        if tw is not None:
            want = self.outcome(lambda: run(tw))
            names = type(obj).__match_args__
            # Native __slots__ cannot pickle with protocols 0 and 1; SlotObj can
            # (documented), so only a success of both is compared field by field.
            if got[0] == "ok" and want[0] == "ok":
                self.compare_fields(got[1], want[1], names)

    def class_op(self):
        i = self.int(len(self.objs))
        obj, tw = self.objs[i]
        cls = self.pick(self.classes)[0] if self.int(4) else self.pick((int, object, type(obj)))
        self.say(f"__class__ {type(obj).__name__} -> {cls.__name__}")
        # A class whose fields include "__class__" stores the value in that field
        # (its member descriptor shadows object's); the native twin takes the same
        # store, so that their fields still agree.
        is_field = "__class__" in getattr(type(obj), "__match_args__", ())
        got = self.outcome(lambda: setattr(obj, "__class__", cls))
        if is_field and tw is not None:
            want = self.outcome(lambda: setattr(tw, "__class__", cls))
            self.compare("__class__ field store", got, want)
        elif tw is not None and got[0] == "ok":
            self.objs[i] = (obj, None)      # another class: the twin stays behind

    def weak_op(self):
        obj, _ = self.pick(self.objs)
        mode = self.int(3)
        prog = self

        def cb(ref):
            if mode == 0:
                prog.mutate()
            elif mode == 1:
                GRAVEYARD.append(ref)
            else:
                prog.collect_some()
        self.say(f"weakref {type(obj).__name__}")
        try:
            self.refs.append(weakref.ref(obj, cb if mode < 3 else None))
        except TypeError:
            pass

    def link_op(self):
        if len(self.objs) < 2:
            return
        i = self.int(len(self.objs))
        a = self.objs[i][0]
        b, _ = self.pick(self.objs)
        names = getattr(type(a), "__match_args__", ()) or ("a",)
        self.say(f"link {type(a).__name__} -> {type(b).__name__}")
        # The native twin has no twin of b to link to: from here the two are
        # no longer compared.
        self.objs[i] = (a, None)
        try:
            setattr(a, self.pick(names), b)
        except Exception as e:   # noqa: BLE001
            self.expect(e)

    def drop_op(self):
        if self.objs:
            self.say("drop")
            self.objs.pop(self.int(len(self.objs)))

    def threshold_op(self):
        """Low thresholds: allocations run collections (and finalizers) in
        the middle of calls, copies and unpickling."""
        arena = self.pick(self.arenas)
        self.thresholds.setdefault(arena, arena.get_threshold())
        t0 = 1 + self.int(8)
        self.say(f"set_threshold({t0})")
        arena.set_threshold(t0)

    def collect_op(self):
        self.say("collect")
        self.collect_some()
        self.read_refs()

    def read_refs(self):
        for r in self.refs:
            o = r()
            if o is not None:
                repr(type(o))
                try:
                    getattr(o, "a", None)
                except Exception as e:   # noqa: BLE001
                    self.expect(e)

    def run(self):
        ACTIVE["mutate"] = self.mutate
        try:
            for _ in range(1 + self.int(self.MAX_CLASSES)):
                self.make_class()
            if not self.classes:
                return
            ops = (self.call, self.call, self.attr_op, self.attr_op, self.dict_op,
                   self.pickle_op, self.class_op, self.weak_op, self.link_op,
                   self.drop_op, self.collect_op, self.threshold_op)
            for _ in range(self.int(self.MAX_OPS)):
                op = ops[self.int(len(ops))]
                (op if self.objs else self.call)()
            self.validate()
        finally:
            ACTIVE["mutate"] = None
            for arena, t in self.thresholds.items():
                arena.set_threshold(*t)
            self.objs.clear()
            GRAVEYARD.clear()
            for a in self.arenas:
                a.collect()
            self.read_refs()
            self.refs.clear()
            self.dicts.clear()
            self.validate()
            self.classes.clear()


class Hook:
    """A value whose copy/pickle hooks run the program's mutation hook."""

    def __init__(self, prog):
        self.prog = prog

    def __reduce__(self):
        self.prog.mutate()
        return (type(None), ())

    def __deepcopy__(self, memo):
        self.prog.mutate()
        return self

    def __eq__(self, other):
        self.prog.mutate()
        return self is other

    __hash__ = object.__hash__


def _mangle(classname, name):
    """A private name as the class statement stores it (as CPython mangles)."""
    if (not isinstance(name, str) or not name.startswith("__") or name.endswith("__")
            or not classname.strip("_")):
        return name
    return "_" + classname.lstrip("_") + name


def _plain(v):
    return isinstance(v, (int, str, type(None), bool))


# ---------------------------------------------------------------------------
# the libFuzzer entry point
# ---------------------------------------------------------------------------

STATS = {"inputs": 0, "classes": 0}


def test_one_input(data):
    import atheris
    fdp = atheris.FuzzedDataProvider(data)
    prog = Program(fdp)
    STATS["inputs"] += 1
    try:
        prog.run()
    except Bug:
        raise
    except Exception as e:   # noqa: BLE001 - only Bug and crashes are findings
        if isinstance(e, SystemError):
            raise Bug(f"SystemError: {e}") from e
    if STATS["inputs"] % 200 == 0:
        gc.collect()


def replay(paths):
    import atheris
    bad = 0
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        log = []
        prog = Program(atheris.FuzzedDataProvider(data), log)
        err = None
        try:
            prog.run()
        except Exception as e:   # noqa: BLE001
            err = e
        print(f"== {p}")
        print("\n".join("   " + line for line in log))
        if isinstance(err, Bug):
            bad += 1
            print(f"   FAILED: {err}")
        elif err is not None:
            print(f"   (ended with {type(err).__name__}: {err})")
        sys.stdout.flush()
    return 1 if bad else 0


def child(argv):
    """Run libFuzzer in this process (the driver's child)."""
    import atheris
    sys.unraisablehook = _unraisable
    # Python coverage: this harness and the stdlib's Python half of copy and
    # pickle (copyreg), not everything loaded (instrument_all takes minutes
    # on a busy machine).  The C extension's own edges come from its build
    # (-fsanitize=fuzzer-no-link), when it has them.
    import copyreg
    for module in (sys.modules[__name__], copy, copyreg):
        _instrument(atheris, module, module.__name__)
    # libFuzzer re-runs argv[0] through the shell for -merge (and -fork):
    # make it the whole command that starts this child again.
    me = " ".join(shlex.quote(a) for a in (sys.executable, os.path.abspath(__file__),
                                           "--child", "--"))
    atheris.Setup([me] + argv, test_one_input)
    atheris.Fuzz()


def _instrument(atheris, space, modname, depth=0):
    for obj in list(vars(space).values()):
        if isinstance(obj, types.FunctionType) and obj.__module__ == modname:
            atheris.instrument_func(obj)
        elif isinstance(obj, type) and obj.__module__ == modname and depth < 2:
            _instrument(atheris, obj, modname, depth + 1)


def _unraisable(u):
    # Exceptions from __del__ and weakref callbacks are the hooks' own doing;
    # only a SystemError there means objarena broke something.
    if SystemError is not None and isinstance(u.exc_value, SystemError):
        sys.stderr.write(f"SystemError in unraisable hook: {u.exc_value!r} ({u.object!r})\n")
        os._exit(70)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=60, help="time bound (default 60)")
    p.add_argument("--runs", type=int, default=-1, help="stop after this many inputs")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="run these inputs and print them")
    p.add_argument("--corpus", default=SEED_CORPUS, help="seed corpus (read only)")
    p.add_argument("--workdir", help="where new inputs and crash files go (default: a temp dir)")
    p.add_argument("--merge", action="store_true",
                   help="at the end, merge new coverage into the seed corpus")
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(extra)
    if args.replay:
        sys.unraisablehook = lambda u: None
        return replay(args.replay)

    work = args.workdir or tempfile.mkdtemp(prefix="objarena-fuzz-")
    new_corpus = os.path.join(work, "corpus")
    os.makedirs(new_corpus, exist_ok=True)
    os.makedirs(args.corpus, exist_ok=True)
    artifacts = os.path.join(work, "artifacts") + os.sep
    os.makedirs(artifacts, exist_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--",
           f"-max_total_time={args.seconds}", f"-runs={args.runs}",
           f"-max_len={args.max_len}", f"-artifact_prefix={artifacts}",
           "-print_final_stats=1", "-timeout=20", "-rss_limit_mb=4096",
           *extra, new_corpus, args.corpus]
    print("objarena fuzz:", " ".join(cmd), flush=True)
    t0 = time.monotonic()
    log_path = os.path.join(work, "fuzz.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        tail = []
        for line in proc.stdout:
            log.write(line)
            text = line.decode("utf-8", "replace")
            if not text.startswith("#") or "NEW" not in text and "pulse" not in text:
                sys.stdout.write(text)
            else:
                tail.append(text)
            if len(tail) > 5:
                del tail[0]
        rc = proc.wait()
    dt = time.monotonic() - t0
    out = open(log_path, encoding="utf-8", errors="replace").read()
    # crash-, timeout-, oom-, leak- files are findings; slow-unit- files only
    # say that an input took long (a busy machine does that too).
    crashes = sorted(f for f in os.listdir(artifacts) if not f.startswith("slow-unit-"))
    san = SAN_RE.findall(out)
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", out)
    new = len(os.listdir(new_corpus))
    print("\n========== objarena fuzz summary ==========")
    print(f"python        {sys.version.split()[0]}  ({sys.executable})")
    print(f"time          {dt:.0f} s (bound {args.seconds} s)")
    print(f"inputs run    {runs[-1] if runs else '?'}")
    print(f"coverage      {'cov %s ft %s' % cov[-1] if cov else '?'}")
    print(f"new inputs    {new} in {new_corpus}")
    print(f"libFuzzer rc  {rc}")
    print(f"sanitizer     {len(san)} report line(s)")
    print(f"failures      {len(crashes)}: " + ", ".join(os.path.join(artifacts, c) for c in crashes))
    for c in crashes:
        print(f"  replay: {sys.executable} {os.path.relpath(__file__)} --replay {artifacts}{c}")
    print(f"log           {log_path}")
    ok = rc == 0 and not crashes and not san
    if args.merge and ok and new:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--",
                        # edges only (no hit counts): a corpus a few KB small
                        "-merge=1", "-use_counters=0", f"-max_len={args.max_len}",
                        args.corpus, new_corpus],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"merged into   {args.corpus} ({len(os.listdir(args.corpus))} files)")
    print("result        " + ("OK" if ok else "FAILED"))
    if ok and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
