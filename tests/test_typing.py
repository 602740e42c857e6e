"""Typing: fields declared by annotation, and the stubs (python/objarena/*.pyi).

1. At run time, a SlotObj class body without ``__slots__`` declares its fields by
   annotation (``id: int``), ClassVar annotations left out.  Each test builds the class
   both ways, from source, and compares: the annotated class must be the ``__slots__``
   class (fields, signature, pickle, errors).
2. mypy over small programs: correct uses pass, ``--strict`` included; wrong uses are
   reported, each on the line that says so (``# E: text``).
3. The stubs cover the public API: ``objarena.__all__``, the names docs/api.md lists, and
   ``mypy.stubtest`` against the installed package (tests/stubtest_allowlist.txt says why
   each remaining difference is acceptable).
"""
import ast
import copy
import inspect
import pickle
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

import objarena
from objarena import Obj, SlotObj
from helpers import raised

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(objarena.__file__).resolve().parent


def define(src, name=None):
    """Run a class statement's source (dedented) in a fresh namespace; return the class
    called `name` (default: the last class defined)."""
    src = textwrap.dedent(src)
    ns = {"__name__": __name__, "SlotObj": SlotObj, "Obj": Obj, "typing": typing,
          "ClassVar": typing.ClassVar}
    exec(compile(src, "<class>", "exec"), ns)
    if name is None:
        name = [n.name for n in ast.parse(src).body if isinstance(n, ast.ClassDef)][-1]
    return ns[name]


def fields_of(cls):
    return cls.__match_args__


# ---------------------------------------------------------------------------
# 1. Fields by annotation, side by side with __slots__

SLOTS_USER = """
    class User(SlotObj):
        __slots__ = ("id", "name")
"""
ANNOTATED_USER = """
    class User(SlotObj):
        id: int
        name: str
"""


def test_annotated_class_is_the_slots_class():
    s, a = define(SLOTS_USER), define(ANNOTATED_USER)
    assert s.__slots__ == ("id", "name")
    assert "__slots__" not in a.__dict__       # dataclass(slots=True) and attrs add it
    assert a.__slotnames__ == ["id", "name"]       # copyreg's, as __slots__ would give
    assert a.__match_args__ == s.__match_args__ == ("id", "name")
    assert str(inspect.signature(a)) == str(inspect.signature(s)) == "(id, name)"
    x, y = s(1, "a"), a(1, "a")
    for f in ("id", "name"):       # from the first use of the class on
        assert type(a.__dict__[f]).__name__ == "member_descriptor"
    assert repr(x) == repr(y) == "User(id=1, name='a')"
    assert sys.getsizeof(x) == sys.getsizeof(y) == 32
    assert repr(a(name="b")) == "User(name='b')"
    assert raised(setattr, y, "extra", 1)[0] is AttributeError
    assert raised(getattr, a(), "id")[0] is AttributeError
    assert not hasattr(y, "__dict__")


@pytest.mark.parametrize("call", [
    lambda c: c(1, 2, 3),
    lambda c: c(x=1),
    lambda c: c(1, id=2),
    lambda c: c(1, "a", 3, x=4),
])
def test_generated_init_errors_are_the_same(call):
    s, a = define(SLOTS_USER), define(ANNOTATED_USER)
    err = raised(call, s)
    assert err is not None and err[0] is TypeError
    assert raised(call, a) == err


class PickledSlots(SlotObj):
    __slots__ = ("id", "name", "__secret")


class PickledAnnotated(SlotObj):
    id: int
    name: str
    __secret: int


@pytest.mark.parametrize("proto", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_and_copy_are_the_same(proto):
    for cls in (PickledSlots, PickledAnnotated):
        obj = cls(1, "a", 7)
        back = pickle.loads(pickle.dumps(obj, proto))
        assert type(back) is cls
        assert repr(back) == repr(obj)
        assert repr(copy.copy(obj)) == repr(obj)
        cycle = cls(1)
        cycle.name = cycle
        deep = copy.deepcopy(cycle)
        assert deep.name is deep
        again = pickle.loads(pickle.dumps(cycle, proto))
        assert again.name is again
    # Private names are mangled as in __slots__ (the compiler mangles annotations).
    assert PickledSlots.__match_args__[2] == "_PickledSlots__secret"
    assert PickledAnnotated.__match_args__[2] == "_PickledAnnotated__secret"


@pytest.mark.parametrize("classvar", [
    "kind: ClassVar[str] = 'user'",
    "kind: typing.ClassVar[str] = 'user'",
    "kind: ClassVar = 'user'",
    "kind: typing.ClassVar = 'user'",
    "kind: 'ClassVar[str]' = 'user'",
    "kind: 'typing.ClassVar[str]' = 'user'",
    "kind: ' ClassVar [ str ] ' = 'user'",
    "kind: 'ClassVar' = 'user'",
    "kind: 't.ClassVar[int]' = 'user'",
    "kind: ClassVar[str]",
])
def test_classvar_annotations_are_not_fields(classvar):
    cls = define(f"""
        class User(SlotObj):
            id: int
            {classvar}
            name: str
    """)
    assert cls.__match_args__ == ("id", "name")
    assert repr(cls(1, "a")) == "User(id=1, name='a')"
    if "=" in classvar:
        assert cls.kind == "user"
        assert cls(1).kind == "user"


def test_future_annotations_strings():
    cls = define("""
        from __future__ import annotations
        class User(SlotObj):
            id: int
            kind: ClassVar[str] = "user"
            other: typing.ClassVar[int] = 2
            name: list[str]
            notclassvar: MyClassVar
    """)
    assert cls.__annotations__["id"] == "int"
    assert cls.__match_args__ == ("id", "name", "notclassvar")
    assert cls.kind == "user" and cls.other == 2


def test_annotation_only_classvar_like_names_are_fields():
    cls = define("""
        class MyClassVar: pass
        class User(SlotObj):
            a: MyClassVar
            b: 'MyClassVar'
            c: 'ClassVarious'
            d: list[typing.ClassVar]
    """)
    assert cls.__match_args__ == ("a", "b", "c", "d")


@pytest.mark.parametrize("clash", ["id = 1", "def id(self): pass", "id: int = 1"])
def test_field_with_a_value_in_the_class_body(clash):
    """A __slots__ entry and a class variable conflict, as natively; an annotated
    field's value is its default, as for a dataclass -- so here, where `name` follows
    `id` without a default, the class fails as the dataclass does (at its first use)."""
    slots = raised(define, f"""
        class User(SlotObj):
            __slots__ = ("id", "name")
            {clash}
    """)
    assert slots == (ValueError, "'id' in __slots__ conflicts with class variable")
    cls = define(f"""
        class User(SlotObj):
            id: int
            name: str
            {clash}
    """)
    # The order is checked when the class is first used with its generated __init__
    # (dataclasses and attrs, which replace it, order fields their own way).
    ann = raised(cls, name="a")
    dc = raised(define, f"""
        import dataclasses
        @dataclasses.dataclass
        class User:
            id: int
            name: str
            {clash}
    """)
    assert ann[0] is dc[0] is TypeError
    assert "non-default argument 'name' follows default argument" in ann[1]
    user = define(f"""
        class User(SlotObj):
            name: str
            id: int
            {clash}
    """)
    assert user("a").id == user.__signature__.parameters["id"].default


@pytest.mark.parametrize("base_src", ["""
    class Base(SlotObj):
        id: int
""", """
    class Base(SlotObj):
        __slots__ = ("id",)
"""])
def test_inheritance_appends_fields(base_src):
    base = define(base_src)
    for sub_src in ["""
        class Sub(Base):
            name: str
    """, """
        class Sub(Base):
            __slots__ = "name"
    """]:
        ns = {"Base": base}
        exec(textwrap.dedent(sub_src), ns)
        sub = ns["Sub"]
        assert sub.__match_args__ == ("id", "name")
        subsub = type(base)("SubSub", (sub,), {"__slots__": ("level",)})
        assert subsub.__match_args__ == ("id", "name", "level")
        assert repr(subsub(1, "a", 2)) == "SubSub(id=1, name='a', level=2)"
        assert str(inspect.signature(subsub)) == "(id, name, level)"


def test_annotated_subclass_from_source():
    base = define(ANNOTATED_USER)
    ns = {"User": base, "SlotObj": SlotObj}
    exec(textwrap.dedent("""
        class Admin(User):
            level: int
        class Plain(Admin):
            pass
    """), ns)
    assert ns["Admin"].__match_args__ == ("id", "name", "level")
    assert ns["Plain"].__match_args__ == ("id", "name", "level")
    assert "__slots__" not in ns["Plain"].__dict__
    assert repr(ns["Plain"](1, "a", 3)) == "Plain(id=1, name='a', level=3)"


def test_redeclared_base_field():
    base = define(ANNOTATED_USER)
    meta = type(base)
    # In __slots__ (as dataclasses and attrs recreate classes) it is the base's field.
    sub = meta("Sub", (base,), {"__slots__": ("id",)})
    assert sub.__match_args__ == ("id", "name")
    assert sys.getsizeof(sub(1, "a")) == 32
    assert sub.id is base.id
    # By annotation it would declare it anew: an error.
    assert raised(meta, "Sub", (base,), {"__annotations__": {"id": int}}) == (
        TypeError, "class Sub: field 'id' is already defined by a base class")


def test_no_annotations_no_slots_no_fields():
    cls = define("""
        class Empty(SlotObj):
            limit = 3
            def method(self): return 1
    """)
    assert cls.__match_args__ == ()
    assert "__slots__" not in cls.__dict__
    assert cls().method() == 1
    assert raised(cls, 1) == (TypeError,
                              "Empty.__init__() takes 1 positional argument but 2 were given")
    assert sys.getsizeof(cls()) == 16


def test_only_classvars_no_fields():
    cls = define("""
        class Consts(SlotObj):
            a: ClassVar[int] = 1
            b: ClassVar[int] = 2
    """)
    assert cls.__match_args__ == ()
    assert sys.getsizeof(cls()) == 16


def test_slots_win_over_annotations():
    cls = define("""
        class User(SlotObj):
            __slots__ = ("id", "__weakref__")
            id: int
            name: str
            limit: int = 5
    """)
    assert cls.__match_args__ == ("id",)
    assert cls.__slots__ == ("id", "__weakref__")
    assert cls.limit == 5
    assert raised(setattr, cls(1), "name", "a")[0] is AttributeError


def test_obj_subclasses_ignore_annotations():
    cls = define("""
        class Point(Obj):
            x: int
            y: int = 0
    """)
    assert "__slots__" not in cls.__dict__
    p = cls(x=1)
    assert vars(p) == {"x": 1}
    assert p.y == 0
    assert raised(getattr, cls(), "x")[0] is AttributeError
    assert raised(cls, 1)[0] is TypeError


def test_annotation_errors():
    meta = objarena.ArenaType
    assert raised(meta, "C", (SlotObj,), {"__annotations__": [("x", int)]}) == (
        TypeError, "class C: __annotations__ must be a dict, not list")
    assert raised(meta, "C", (SlotObj,), {"__annotations__": {1: int}}) == (
        TypeError, "__annotations__ items must be strings, not 'int'")
    assert raised(meta, "C", (SlotObj,), {"__annotations__": {"not id": int}}) == (
        TypeError, "__annotations__ must be identifiers, not 'not id'")
    assert raised(meta, "C", (SlotObj,), {"__annotations__": {"__dict__": dict}})[0] is TypeError

    class Boom:
        def __getattr__(self, name):
            raise RuntimeError(name)

    assert raised(meta, "C", (SlotObj,), {"__annotations__": {"x": Boom()}}) == (
        RuntimeError, "__origin__")

    class NoOrigin:
        pass

    assert meta("C", (SlotObj,), {"__annotations__": {"x": NoOrigin()}}).__match_args__ == ("x",)


def test_weakref_annotation_opts_in_as_in_slots():
    cls = define("""
        class Node(SlotObj):
            value: int
            __weakref__: typing.Any
    """)
    import weakref
    n = cls(1)
    assert weakref.ref(n)() is n
    assert cls.__match_args__ == ("value",)


def test_arena_keyword_with_annotations():
    arena = objarena.Arena(name="typed")
    cls = objarena.ArenaType("Entry", (SlotObj,), {"__annotations__": {"key": str}},
                             arena=arena)
    e = cls("k")
    assert objarena.arena_of(e) is arena
    assert arena.stats()["objects"] == 1
    del e


# ---------------------------------------------------------------------------
# 2. mypy

@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    pytest.importorskip("mypy.api")
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(tmp_path, cache, source, *flags):
    """mypy's report lines for `source` (written to tmp_path/prog.py), and its status.

    mypy runs as `python -m mypy` (what mypy.api.run does in process): a process of its
    own keeps mypy's caches out of the reference counts that tools/refleak.py watches."""
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(source))
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    r = subprocess.run([
        sys.executable, "-m", "mypy", str(prog), "--cache-dir", str(cache),
        "--no-error-summary", "--show-error-codes", "--hide-error-context", "--no-pretty",
        "--config-file", str(tmp_path / "mypy.ini"), *flags,
    ], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert not r.stderr, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()], r.returncode


GOOD = """
    from __future__ import annotations

    import gc
    import pickle
    from typing import Any, ClassVar

    import objarena
    from objarena import Arena, ArenaType, Obj, RefInfo, SlotObj, boolean, f64, i64


    class User(SlotObj):
        id: int
        name: str
        kind: ClassVar[str] = "user"


    class Admin(User):
        level: int


    class Legacy(SlotObj):                 # __slots__ plus matching annotations
        __slots__ = ("key", "value", "__weakref__")
        key: str
        value: object


    cache = Arena(name="cache", max_bytes=64 << 20)


    class Entry(SlotObj, arena=cache):
        key: str
        value: bytes


    class Point(Obj):
        x: int
        y: int


    class Reading(SlotObj):                # typed fields: a float, an int, a bool to mypy
        sensor: str
        t: f64
        value: f64 = 0.0
        count: i64 = 0
        ok: boolean = True


    def on_collect(phase: str, info: dict[str, Any]) -> None:
        assert phase in ("start", "stop") and info["generation"] in (0, 1, 2)


    def main() -> int:
        u = User(1, "Asliddin")
        u = User(id=2, name="B")
        a = Admin(1, "x", level=3)
        a.level += 1
        l = Legacy("k", None)
        e = Entry(key="k", value=b"v")
        p = Point(x=1, y=2)
        p.x = p.y + 1
        r = Reading("s", 1.5, count=2)
        r.value = r.t * 2 + r.count
        r.count += 1
        reading: float = r.value
        ok: bool = r.ok and Reading.__match_args__ == ("sensor", "t", "value", "count", "ok")
        assert ok and reading == 5.0
        name: str = u.name
        fields: tuple[str, ...] = User.__match_args__
        match a:
            case Admin(ident, who, lv):
                total: int = ident + lv
                assert who == "x" and total
        back = pickle.loads(pickle.dumps(u))
        assert isinstance(back, User)
        assert isinstance(User, ArenaType)
        n: int = cache.collect() + cache.collect(generation=0) + objarena.collect(1)
        count: tuple[int, int, int] = cache.get_count()
        cache.set_threshold(700)
        cache.set_threshold(700, 10, 10)
        t0, t1, t2 = objarena.get_threshold()
        cache.disable()
        cache.enable()
        on: bool = cache.isenabled() and objarena.isenabled()
        stats = cache.stats()
        used: int = stats["bytes_in_use"] + stats["objects"]
        sizes = [c["size"] for c in stats["size_classes"]]
        released: int = cache.trim() + objarena.trim()
        cache.callbacks.append(on_collect)
        objarena.callbacks.append(on_collect)
        cache.set_debug(objarena.DEBUG_SAVEALL | objarena.DEBUG_STATS)
        flags: int = cache.get_debug()
        cache.set_debug(0)
        cache.garbage.clear()
        objs: list[Any] = cache.get_objects() + cache.get_objects(generation=2)
        tracked: bool = cache.is_tracked(e) and not cache.is_finalized(e)
        gen: int = cache.generation_of(e) + objarena.generation_of(u)
        refs = cache.get_referents(e, l) + cache.get_referrers(e)
        cache.freeze()
        frozen: int = cache.get_freeze_count()
        cache.unfreeze()
        info: RefInfo = objarena.refinfo(u)
        rc: int = info.refcount + info.internal + info.external
        rc2, internal, external = cache.refinfo(e)
        gstats: list[dict[str, int]] = cache.get_stats()
        size: int = objarena.footprint(u) + objarena.footprint([1, 2])
        where: Arena | None = objarena.arena_of(u)
        label: str | None = cache.name
        limit: int | None = cache.max_bytes
        default: Arena = objarena.default_arena
        gc.collect()
        cache.callbacks.remove(on_collect)
        objarena.callbacks.remove(on_collect)
        return (n + count[0] + t0 + t1 + t2 + on + used + len(sizes) + released + flags
                + len(objs) + tracked + gen + len(refs) + frozen + rc + rc2 + internal
                + external + len(gstats) + size + len(name) + len(fields)
                + (where is default) + len(label or "") + (limit or 0))


    def measure() -> list[dict[str, Any]]:
        rows = objarena.compare(fields=[2, 5], n=1000, kinds=["slots", "SlotObj"],
                                progress=print)
        return rows


    print(main())
"""


def test_mypy_accepts_typical_program(tmp_path, mypy_cache):
    lines, status = run_mypy(tmp_path, mypy_cache, GOOD)
    assert (lines, status) == ([], 0)


def test_mypy_strict_accepts_typical_program(tmp_path, mypy_cache):
    lines, status = run_mypy(tmp_path, mypy_cache, GOOD, "--strict")
    assert (lines, status) == ([], 0)


def test_typical_program_runs(tmp_path):
    """The program mypy accepts also runs (pickle needs its classes in a module)."""
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(GOOD).replace("print(main())", "main()"))
    r = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


BAD = """
    from typing import ClassVar
    import objarena
    from objarena import Arena, Obj, SlotObj, f64, i64

    class User(SlotObj):
        id: int
        name: str
        kind: ClassVar[str] = "user"

    class Reading(SlotObj):
        t: f64
        count: i64 = 0

    class Point(Obj):
        x: int

    u = User(1, "a")
    User("1", "a")                      # E: Argument 1 to "User" has incompatible type "str"; expected "int"  [arg-type]
    User(1, name=2)                     # E: Argument "name" to "User" has incompatible type "int"; expected "str"  [arg-type]
    User(1, "a", nick="q")              # E: Unexpected keyword argument "nick" for "User"  [call-arg]
    User(1, "a", 3)                     # E: Too many arguments for "User"  [call-arg]
    User(1)                             # E: Missing positional argument "name" in call to "User"  [call-arg]
    User(1, "a", kind="x")              # E: Unexpected keyword argument "kind" for "User"  [call-arg]
    u.nick                              # E: "User" has no attribute "nick"  [attr-defined]
    u.nick = 1                          # E: "User" has no attribute "nick"  [attr-defined]
    u.id = "x"                          # E: Incompatible types in assignment (expression has type "str", variable has type "int")  [assignment]
    Point(1)                            # E: Too many arguments for "Point"  [call-arg]
    Point(x=1).z                        # E: "Point" has no attribute "z"  [attr-defined]
    a = Arena(max_bytes="1")            # E: Argument "max_bytes" to "Arena" has incompatible type "str"; expected "int | None"  [arg-type]
    Arena(name=3)                       # E: Argument "name" to "Arena" has incompatible type "int"; expected "str | None"  [arg-type]
    a.collect("2")                      # E: Argument 1 to "collect" of "Arena" has incompatible type "str"; expected "int"  [arg-type]
    a.set_threshold(1, 2, 3, 4)         # E: Too many arguments for "set_threshold" of "Arena"  [call-arg]
    a.set_threshold(threshold0=1)       # E: Unexpected keyword argument "threshold0" for "set_threshold" of "Arena"  [call-arg]
    a.get_objects(generation="old")     # E: Argument "generation" to "get_objects" of "Arena" has incompatible type "str"; expected "int | None"  [arg-type]
    a.set_debug("all")                  # E: Argument 1 to "set_debug" of "Arena" has incompatible type "str"; expected "int"  [arg-type]
    a.stats()["objetcs"]                # E: TypedDict "_ArenaStats" has no key "objetcs"  [typeddict-item]
    a.name = "other"                    # E: Property "name" defined in "Arena" is read-only  [misc]
    a.callbacks.append(len)             # E: Argument 1 to "append" of "list" has incompatible type "Callable[[Sized], int]"; expected "Callable[[Literal['start', 'stop'], dict[str, Any]], object]"  [arg-type]
    objarena.collect(generation="2")    # E: Argument "generation" to "collect" has incompatible type "str"; expected "int"  [arg-type]
    objarena.refinfo(u).total           # E: "RefInfo" has no attribute "total"  [attr-defined]
    objarena.DEBUG_SAVEALL = 3          # E: Cannot assign to final name "DEBUG_SAVEALL"  [misc]
    objarena.compare(fields="2")        # E: Argument "fields" to "compare" has incompatible type "str"; expected "int | Iterable[int]"  [arg-type]
    s: str = objarena.footprint(u)      # E: Incompatible types in assignment (expression has type "int", variable has type "str")  [assignment]
    Reading("1.5")                      # E: Argument 1 to "Reading" has incompatible type "str"; expected "float"  [arg-type]
    Reading(1.5).count = 2.5            # E: Incompatible types in assignment (expression has type "float", variable has type "int")  [assignment]
    Reading()                           # E: Missing positional argument "t" in call to "Reading"  [call-arg]
"""


def test_mypy_reports_wrong_uses(tmp_path, mypy_cache):
    lines, status = run_mypy(tmp_path, mypy_cache, BAD)
    src = textwrap.dedent(BAD).splitlines()
    expected = {}
    for i, line in enumerate(src, 1):
        if "# E: " in line:
            expected[i] = line.split("# E: ", 1)[1].strip()
    got = {}
    for line in lines:
        if ": note: " in line:
            continue
        m = re.match(r"(?:.*[/\\])?prog\.py:(\d+): error: (.*)$", line)
        assert m, f"unexpected mypy output: {line}"
        got.setdefault(int(m.group(1)), []).append(m.group(2).strip())
    missing = {i: msg for i, msg in expected.items() if msg not in got.get(i, [])}
    extra = {i: msgs for i, msgs in got.items() if i not in expected}
    assert not missing and not extra, (missing, extra, lines)
    assert status == 1


# ---------------------------------------------------------------------------
# 3. The stubs cover the public API

def stub_names(path):
    """Top-level names a stub defines or re-exports, and the members of its classes."""
    tree = ast.parse(path.read_text())
    names, classes, stub_all = set(), {}, None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                classes[node.name] = {n.name for n in node.body
                                      if isinstance(n, ast.FunctionDef)} | {
                    n.target.id for n in node.body
                    if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                names.add(t.id)
                if t.id == "__all__":
                    stub_all = ast.literal_eval(node.value)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname for a in node.names if a.asname == a.name)
    return names, classes, stub_all


def test_stub_lists_every_public_name():
    names, _, stub_all = stub_names(PACKAGE / "__init__.pyi")
    assert stub_all == objarena.__all__
    assert set(objarena.__all__) <= names
    public = {n for n in dir(objarena) if not n.startswith("_")}
    modules = {"compare"}  # the function, bound over the submodule's name
    assert public - names - modules == {"sys"} or public - names - modules <= {"sys"}


def test_stub_covers_the_names_of_api_md():
    doc = (ROOT / "docs" / "api.md").read_text()
    names, classes, _ = stub_names(PACKAGE / "__init__.pyi")
    documented = set(re.findall(r"`objarena\.(\w+)", doc)) - {"_testing"}
    assert documented, "docs/api.md lists no objarena.NAME"
    assert documented <= names, documented - names
    # The Arena members of the collector's table and the Arena section.
    table = doc[doc.index("### The collector"):]
    table = table[:table.index("\n## ")]
    members = set(re.findall(r"^\| `(\w+)", table, re.M))
    members |= set(re.findall(r"`(\w+)\(", table)) | set(re.findall(r"`(\w+)`", table))
    members = {m for m in members if hasattr(objarena.Arena, m)}
    section = doc[doc.index("## `objarena.Arena"):doc.index("### The collector")]
    members |= {m for m in re.findall(r"`(\w+)", section) if hasattr(objarena.Arena, m)}
    assert {"collect", "callbacks", "refinfo", "stats", "trim", "name"} <= members
    assert members <= classes["Arena"], members - classes["Arena"]
    # Every Arena member has a module-level shortcut in the stub as at run time.
    for m in members:
        if hasattr(objarena, m):
            assert m in names, m


def test_stubs_are_installed():
    for name in ("py.typed", "__init__.pyi", "_objarena.pyi", "compare.pyi"):
        assert (PACKAGE / name).is_file(), name


def test_stubtest(tmp_path):
    """mypy.stubtest finds the stubs true to the running package, but for the
    differences that tests/stubtest_allowlist.txt explains."""
    pytest.importorskip("mypy.stubtest")
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "objarena",
         "--allowlist", str(ROOT / "tests" / "stubtest_allowlist.txt"),
         "--mypy-config-file", str(tmp_path / "mypy.ini")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
