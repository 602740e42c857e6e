"""objarena.compare, python -m objarena compare, and objarena.footprint, end to end.

Small n throughout: these tests check that the tool works and that its numbers agree
with measurements made independently here, not how fast anything is.
"""
import gc
import json
import os
import subprocess
import sys
import tracemalloc
import types

import pytest

import objarena
from objarena import Arena, SlotObj

cmp = sys.modules["objarena.compare"]  # objarena.compare itself is the function

N = 3000


def run_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "objarena", *args],
        capture_output=True, text=True, timeout=timeout,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )


def slot_class(names, arena):
    return types.new_class("Rec", (SlotObj,), {"arena": arena},
                           lambda ns: ns.__setitem__("__slots__", tuple(names)))


# --- the CLI ----------------------------------------------------------------------------

def test_cli_table_lists_every_kind():
    out = run_cli("compare", "--n", str(N), "--fields", "2", "--repeat", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines[0].split()
    for col in ("kind", "fields", "getsizeof", "footprint", "create", "read", "write", "gc"):
        assert col in header
    table_kinds = [ln.split()[0] for ln in lines[2:] if ln.strip()]
    for kind in cmp.available_kinds():
        assert kind in table_kinds, f"{kind} missing from the table:\n{out.stdout}"
    # the note says where sys.getsizeof misleads, and the __slots__ claim is checked
    assert "misses the instance's" in out.stdout
    assert "__slots__ saves" in out.stdout and "40-60%" in out.stdout
    # progress goes to stderr, not into the table
    assert "objarena compare:" in out.stderr
    assert "objarena compare:" not in out.stdout


def test_cli_table_is_aligned():
    out = run_cli("compare", "--n", "500", "--fields", "2", "5", "--repeat", "1", "--no-rss",
                  "--kinds", "slots", "SlotObj", "-q")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    table = out.stdout.split("\n\n")[0].splitlines()
    assert len(table) == 2 + 4
    assert len({len(ln) for ln in table[1:]}) == 1  # rule and rows share one width


def test_cli_json_schema():
    out = run_cli("compare", "--n", str(N), "--fields", "2", "3", "--repeat", "1",
                  "--no-rss", "--json", "-q")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    for key in ("schema", "objarena", "python", "implementation", "platform", "columns",
                "rows", "slots_saving"):
        assert key in doc
    assert doc["schema"] == 1
    assert doc["objarena"] == objarena.__version__
    assert set(doc["columns"]) == set(cmp.ROW_KEYS)
    kinds = cmp.available_kinds()
    assert len(doc["rows"]) == 2 * len(kinds)
    assert [r["kind"] for r in doc["rows"]] == kinds * 2
    for row in doc["rows"]:
        assert set(row) == set(cmp.ROW_KEYS)
        assert row["n"] == N and row["fields"] in (2, 3)
        assert isinstance(row["getsizeof"], int)
        for key in ("true_bytes", "in_use_bytes", "traced_bytes", "create_ns", "create_gc_ns",
                    "read_ns", "gc_ms", "gc_ns_per_obj"):
            assert isinstance(row[key], (int, float)) and row[key] >= 0, key
        assert row["rss_bytes"] is None  # --no-rss
        assert row["arena"] == (row["kind"] in ("SlotObj", "Obj"))
        if row["kind"] in ("tuple", "namedtuple"):
            assert row["write_ns"] is None
        else:
            assert row["write_ns"] >= 0
    saving = {s["fields"]: s for s in doc["slots_saving"]}
    assert set(saving) == {2, 3}
    for s in saving.values():
        assert set(s) == {"fields", "dict_true_bytes", "slots_true_bytes", "saving",
                          "getsizeof_saving"}
        assert 0 < s["saving"] < 1


@pytest.mark.parametrize("args, message", [
    ([], "required"),
    (["frobnicate"], "invalid choice"),
    (["compare", "--n", "0"], "must be >= 1"),
    (["compare", "--n", "many"], "not an integer"),
    (["compare", "--fields"], "expected at least one argument"),
    (["compare", "--fields", "0"], "must be >= 1"),
    (["compare", "--fields", "1000"], "at most 250"),
    (["compare", "--kinds", "nope"], "unknown kind 'nope'"),
    (["compare", "--repeat", "-1"], "must be >= 1"),
    (["compare", "--bogus"], "unrecognized arguments"),
])
def test_cli_bad_options(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert "usage:" in out.stderr and "error:" in out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_kinds_case_insensitive():
    out = run_cli("compare", "--n", "200", "--fields", "1", "--repeat", "1", "--no-rss",
                  "--kinds", "SLOTS", "slotobj", "--json", "-q")
    assert out.returncode == 0, out.stderr
    assert [r["kind"] for r in json.loads(out.stdout)["rows"]] == ["slots", "SlotObj"]


# --- the numbers, checked independently ----------------------------------------------------

ARENA_KINDS = [k for k in ("SlotObj", "Obj") if hasattr(objarena._objarena, k)]


def arena_instance_maker(kind, arena):
    """(class, make) for 2-field instances of an arena kind, built as compare builds them."""
    if kind == "SlotObj":
        cls = slot_class(("f0", "f1"), arena)
        return cls, lambda: cls(0, 1)
    cls = types.new_class("Rec", (objarena._objarena.Obj,), {"arena": arena})
    return cls, lambda: cls(f0=0, f1=1)


@pytest.mark.parametrize("kind", ARENA_KINDS)
def test_arena_bytes_agree_with_arena_stats(kind):
    n = 20_000
    (row,) = objarena.compare(fields=2, n=n, kinds=[kind], repeat=1, rss=False)
    # the same build, measured here on a fresh Arena of our own
    arena = Arena(name="test-compare")
    if hasattr(arena, "disable"):
        arena.disable()
    _, make = arena_instance_maker(kind, arena)
    holder = [None] * n
    s0 = arena.stats()
    for i in range(n):
        holder[i] = make()
    s1 = arena.stats()
    assert s1["objects"] - s0["objects"] == n
    assert row["in_use_bytes"] == (s1["bytes_in_use"] - s0["bytes_in_use"]) / n
    assert row["true_bytes"] == (s1["bytes_reserved"] - s0["bytes_reserved"]) / n
    assert row["getsizeof"] == sys.getsizeof(holder[0])
    if kind == "SlotObj":
        assert row["getsizeof"] == 32
    assert row["footprint"] == objarena.footprint(holder[0])
    assert row["in_use_bytes"] <= row["footprint"] <= row["true_bytes"]
    # the arena reports its objects to tracemalloc: the traced bytes are the blocks
    assert row["traced_bytes"] == pytest.approx(row["in_use_bytes"], abs=1.0)
    if hasattr(arena, "collect"):
        assert row["arena_collect_ms"] is not None and row["arena_collect_ms"] >= 0
    assert row["create_ns"] >= 0 and row["create_gc_ns"] >= 0


def test_native_bytes_agree_with_tracemalloc():
    n = 20_000
    (row,) = objarena.compare(fields=2, n=n, kinds=["slots"], repeat=1, rss=False)

    class Rec:
        __slots__ = ("f0", "f1")

        def __init__(self, f0, f1):
            self.f0 = f0
            self.f1 = f1

    holder = [None] * n
    gc.collect()
    tracemalloc.start()
    try:
        t0 = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            holder[i] = Rec(0, 1)
        t1 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert row["in_use_bytes"] == pytest.approx((t1 - t0) / n, abs=1.0)
    assert row["traced_bytes"] == row["in_use_bytes"]
    # 16-byte header + 2 fields + 16-byte GC header, already a multiple of 16
    assert row["true_bytes"] == pytest.approx(48, abs=1.0)
    assert row["getsizeof"] == sys.getsizeof(holder[0])


@pytest.mark.parametrize("fields", [2, 5])
def test_dict_class_costs_at_least_slots(fields):
    rows = objarena.compare(fields=fields, n=N, kinds=["dict", "slots"], repeat=1, rss=False)
    by = {r["kind"]: r for r in rows}
    assert by["dict"]["true_bytes"] >= by["slots"]["true_bytes"]
    assert by["dict"]["in_use_bytes"] >= by["slots"]["in_use_bytes"]
    # sys.getsizeof misses the dict class's attribute storage; the true figure does not
    assert by["dict"]["true_bytes"] > by["dict"]["getsizeof"]
    (saving,) = cmp.slots_saving(rows)
    assert saving["saving"] == pytest.approx(
        1 - by["slots"]["true_bytes"] / by["dict"]["true_bytes"])


def test_rows_are_json_serialisable_and_complete():
    rows = objarena.compare(fields=[1, 2], n=200, repeat=1, rss=False)
    json.dumps(cmp.to_json(rows))
    assert len(rows) == 2 * len(cmp.available_kinds())
    for r in rows:
        assert tuple(r) == cmp.ROW_KEYS
    text = cmp.report(rows)
    for kind in cmp.available_kinds():
        assert kind in text


def test_rss_cross_check_runs():
    (row,) = objarena.compare(fields=2, n=50_000, kinds=["slots"], repeat=1, rss=True)
    if row["rss_bytes"] is None:
        pytest.skip("no /proc/self/statm on this platform")
    # noisy by nature: only check that it is in the right region
    assert 0.5 * row["true_bytes"] < row["rss_bytes"] < 3 * row["true_bytes"]


def test_progress_callback():
    msgs = []
    objarena.compare(fields=[2, 3], n=100, kinds=["tuple"], repeat=1, rss=False,
                     progress=msgs.append)
    assert len(msgs) == 2 and "tuple" in msgs[0] and "[2/2]" in msgs[1]


@pytest.mark.parametrize("kwargs, exc", [
    ({"n": 0}, ValueError),
    ({"n": 1.5}, TypeError),
    ({"n": True}, TypeError),
    ({"fields": 0}, ValueError),
    ({"fields": []}, ValueError),
    ({"fields": "2"}, TypeError),
    ({"fields": [2, None]}, TypeError),
    ({"kinds": ["nope"]}, ValueError),
    ({"kinds": []}, ValueError),
    ({"kinds": [3]}, TypeError),
    ({"repeat": 0}, ValueError),
])
def test_compare_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        objarena.compare(**kwargs)


def test_compare_is_the_function():
    assert callable(objarena.compare)
    assert objarena.compare is cmp.compare


def test_module_shortcuts_go_to_the_default_arena():
    arena = objarena.default_arena
    for name in ("collect", "get_count", "get_threshold", "stats", "trim", "isenabled"):
        if hasattr(arena, name):
            assert getattr(objarena, name) == getattr(arena, name)
            assert name in objarena.__all__
    for name in ("garbage", "callbacks"):
        if hasattr(arena, name):
            assert getattr(objarena, name) is getattr(arena, name)


def test_testing_hooks():
    import objarena._testing as testing

    for name in ("fail_os_alloc", "validate"):
        assert name in testing.__all__ and callable(getattr(testing, name))
    testing.validate(objarena.default_arena)


# --- footprint -----------------------------------------------------------------------------

def test_footprint_arena_object():
    arena = Arena()
    obj = slot_class(("a", "b"), arena)(1, 2)
    fp = objarena.footprint(obj)
    assert fp == objarena._objarena.arena_footprint(obj)
    assert sys.getsizeof(obj) <= fp < sys.getsizeof(obj) + 4  # page share: a byte or two


def test_footprint_native_slots_and_tuple():
    class S:
        __slots__ = ("a", "b")

    s = S()
    assert objarena.footprint(s) == 48
    assert objarena.footprint((1, 2)) == 64  # 56 bytes take a 64-byte obmalloc block


def test_footprint_native_dict_instance_counts_attributes():
    class C:
        def __init__(self):
            self.a = 1
            self.b = 2

    objs = [C() for _ in range(5)]
    fp = objarena.footprint(objs[0])
    assert fp > sys.getsizeof(objs[0])
    # against tracemalloc, each trace rounded up to its block
    from objarena import _measure

    k = 2000
    holder = [None] * k

    def fill():
        for i in range(k):
            holder[i] = C()

    _, _, blocks = _measure.traced(fill)
    assert fp == pytest.approx(blocks / k, abs=8)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11+: materialised instance dicts")
def test_footprint_does_not_materialise_the_dict():
    from objarena import _measure

    class C:
        def __init__(self):
            self.a = 1

    c = C()
    assert _measure.existing_instance_dict(c) is None
    before = objarena.footprint(c)
    assert _measure.existing_instance_dict(c) is None  # the measurement changed nothing
    c.__dict__  # now it exists, and it costs
    assert _measure.existing_instance_dict(c) is not None
    assert objarena.footprint(c) > before
