"""objarena.compare, python -m objarena compare, and objarena.footprint, end to end.

Small n throughout: these tests check that the tool works and that its numbers agree
with measurements made independently here, not how fast anything is.
"""
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tracemalloc
import types
from pathlib import Path

import pytest

import objarena
from objarena import Arena, SlotObj

cmp = sys.modules["objarena.compare"]  # objarena.compare itself is the function

N = 3000
DOCS = Path(__file__).resolve().parents[1] / "docs" / "compare.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "objarena", *args],
        capture_output=True, text=True, timeout=timeout,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )


def block(size):
    """The obmalloc block that a request of size bytes (up to 512) occupies."""
    return (size + 15) // 16 * 16


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
                          "dict_getsizeof", "slots_getsizeof", "getsizeof_saving"}
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


# --- the JSON document against its documentation ---------------------------------------------

JSON_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array of objects": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "null": lambda v: v is None,
}


def documented_schema():
    """docs/compare.md's JSON section as three {key: type} dicts: document, row, saving."""
    section = DOCS.read_text().split("## The JSON document", 1)[1].split("\n## ", 1)[0]
    tables = []
    for line in section.splitlines():
        if line.startswith("| key |"):
            tables.append({})
        elif line.startswith("| `") and tables:
            key, type_text = (c.strip() for c in line.strip("|").split("|")[:2])
            tables[-1][key.strip("`")] = type_text
    assert len(tables) == 3, "docs/compare.md: expected the document, row and saving tables"
    return tables


def assert_conforms(obj, schema, where):
    assert list(obj) == list(schema), f"{where}: keys differ from docs/compare.md"
    for key, type_text in schema.items():
        kinds = type_text.split(" or ")
        assert all(k in JSON_TYPES for k in kinds), f"undocumented type {type_text!r}"
        assert any(JSON_TYPES[k](obj[key]) for k in kinds), \
            f"{where}[{key!r}] = {obj[key]!r} is not {type_text}"


def test_documented_schema_matches_the_code():
    doc_keys, row_keys, saving_keys = documented_schema()
    assert tuple(row_keys) == cmp.ROW_KEYS
    rows = objarena.compare(fields=2, n=200, kinds=["dict", "slots"], repeat=1, rss=False)
    doc = cmp.to_json(rows)
    assert list(doc) == list(doc_keys)
    assert list(doc["slots_saving"][0]) == list(saving_keys)
    assert doc["schema"] == cmp.SCHEMA_VERSION == 1
    assert f'"schema": {cmp.SCHEMA_VERSION}' in DOCS.read_text()


def test_cli_json_validates_against_the_documented_schema():
    doc_schema, row_schema, saving_schema = documented_schema()
    out = run_cli("compare", "--n", "2000", "--fields", "1", "4", "--repeat", "1", "--json", "-q")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert_conforms(doc, doc_schema, "document")
    assert doc["schema"] == 1
    assert doc["python"] == sys.version and doc["platform"] == sys.platform
    assert doc["implementation"] == sys.implementation.name
    assert list(doc["columns"]) == list(row_schema)
    assert all(isinstance(v, str) and v for v in doc["columns"].values())
    kinds = cmp.available_kinds()
    assert [(r["fields"], r["kind"]) for r in doc["rows"]] == \
        [(f, k) for f in (1, 4) for k in kinds]
    for i, row in enumerate(doc["rows"]):
        assert_conforms(row, row_schema, f"rows[{i}]")
        assert row["n"] == 2000
        assert row["label"] == cmp.KINDS[row["kind"]].label
        assert row["arena"] is cmp.KINDS[row["kind"]].arena
        # null exactly where the documentation allows it
        assert (row["write_ns"] is None) == (row["kind"] in ("tuple", "namedtuple"))
        assert (row["arena_collect_ms"] is None) == (not row["arena"])
        if row["rss_bytes"] is not None:  # measured: --no-rss was not given
            # 2,000 small objects may fit in pages the child already had resident
            assert row["rss_bytes"] >= 0
    assert [s["fields"] for s in doc["slots_saving"]] == [1, 4]
    for i, s in enumerate(doc["slots_saving"]):
        assert_conforms(s, saving_schema, f"slots_saving[{i}]")


# --- --plot -----------------------------------------------------------------------------------
#
# Drawing runs matplotlib and numpy, C extensions built for a release CPython: under a
# debug interpreter their reference counting leaves sys.gettotalrefcount() drifting for
# the rest of the process (hypothesis, for one, saves numpy's random state around every
# example once numpy is imported), which would blind the refleak hunt.  So every test
# that draws or reads an image does it in a child process.

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="matplotlib is not installed")


def image_facts(path):
    """(ndim, height, width, std) of the image matplotlib reads back from path."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys, matplotlib.image as m; p = m.imread(sys.argv[1]); "
         "print(p.ndim, p.shape[0], p.shape[1], float(p.std()))", str(path)],
        capture_output=True, text=True, timeout=120, check=True)
    ndim, height, width, std = out.stdout.split()
    return int(ndim), int(height), int(width), float(std)


PLOT_IN_CHILD = """
import sys
from pathlib import Path
import objarena
cmp = sys.modules["objarena.compare"]
tmp = Path(sys.argv[1])
rows = objarena.compare(fields=[2, 3], n=300, repeat=1, rss=False)
cmp.plot(rows, tmp / "compare.png")
cmp.plot(rows, tmp / "compare.svg")  # the suffix picks the format
for path, rows_ in ((tmp / "compare.nope", rows), (tmp / "empty.png", [])):
    try:
        cmp.plot(rows_, path)
    except ValueError as e:
        print("ValueError:", e)
"""


@needs_matplotlib
def test_plot_writes_a_png_that_matplotlib_reads(tmp_path):
    out = subprocess.run([sys.executable, "-c", PLOT_IN_CHILD, str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    path = tmp_path / "compare.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    ndim, height, width, std = image_facts(path)
    assert ndim == 3 and height > 200 and width > 200
    assert std > 0  # not a blank image
    assert b"<svg" in (tmp_path / "compare.svg").read_bytes()[:1000]
    errors = out.stdout.splitlines()
    assert len(errors) == 2
    assert "cannot write 'nope' images" in errors[0] and "no rows" in errors[1]
    assert not (tmp_path / "empty.png").exists()


@needs_matplotlib
def test_cli_plot(tmp_path):
    path = tmp_path / "out.png"
    out = run_cli("compare", "--n", "500", "--fields", "2", "5", "--repeat", "1", "--no-rss",
                  "--kinds", "dict", "slots", "SlotObj", "--plot", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("kind")  # the table is printed as without --plot
    assert f"plot written to {path}" in out.stderr
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert image_facts(path)[1] > 0
    # with --json, stdout stays one JSON document
    out = run_cli("compare", "--n", "200", "--fields", "2", "--repeat", "1", "--no-rss",
                  "--kinds", "tuple", "--json", "-q", "--plot", str(tmp_path / "j.png"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"][0]["kind"] == "tuple"
    assert out.stderr == ""
    assert (tmp_path / "j.png").read_bytes()[:8] == PNG_SIGNATURE


def test_cli_plot_without_matplotlib_fails_before_measuring(tmp_path):
    # A package that fails to import, first on the path of the command and its children.
    fake = tmp_path / "hide" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'matplotlib'\")\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fake.parent), env.get("PYTHONPATH")]))
    # n this large would take minutes to measure: the error must come first
    out = subprocess.run(
        [sys.executable, "-m", "objarena", "compare", "--n", "50_000_000",
         "--plot", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert out.returncode == 2
    assert out.stdout == ""
    assert "usage:" in out.stderr and "Traceback" not in out.stderr
    assert "error: argument --plot: needs matplotlib" in out.stderr
    assert "pip install 'objarena[plot]'" in out.stderr
    assert "[1/" not in out.stderr  # no progress: nothing was measured
    assert not (tmp_path / "x.png").exists()


def test_plot_without_matplotlib_raises_import_error(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rows = objarena.compare(fields=2, n=100, kinds=["tuple"], repeat=1, rss=False)
    with pytest.raises(ImportError, match=r"pip install 'objarena\[plot\]'"):
        cmp.plot(rows, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args, message", [
    (["compare", "--plot"], "expected one argument"),
    (["compare", "--plot", "out.nosuchformat"], "cannot write 'nosuchformat' images"),
    (["compare", "--plot", "/no/such/folder/out.png"], "no such directory"),
])
@needs_matplotlib
def test_cli_bad_plot_options(args, message):
    out = run_cli(*args, "--n", "50_000_000")
    assert out.returncode == 2
    assert out.stdout == ""
    assert "usage:" in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr and "[1/" not in out.stderr


# --- the __slots__ statement ------------------------------------------------------------------

def fake_rows(fields, dict_bytes, dict_size, slots_bytes, slots_size):
    rows = []
    for kind, true_bytes, size in (("dict", dict_bytes, dict_size),
                                   ("slots", slots_bytes, slots_size)):
        row = dict.fromkeys(cmp.ROW_KEYS)
        row.update(kind=kind, fields=fields, n=1000, true_bytes=true_bytes, getsizeof=size)
        rows.append(row)
    return rows


@pytest.mark.parametrize("dict_bytes, dict_size, verdict, getsizeof_words", [
    (160.0, 48, "saves 70%, above that range", "48 B against 48 B: saves nothing"),
    (96.0, 56, "saves 50%, within that range", "48 B against 56 B: saves 14%"),
    (80.0, 48, "saves 40%, within that range", "48 B against 48 B: saves nothing"),
    (64.0, 32, "saves 25%, below that range", "48 B against 32 B: costs 50% more"),
    (48.0, 48, "saves nothing, below that range", "48 B against 48 B: saves nothing"),
])
def test_slots_statement(dict_bytes, dict_size, verdict, getsizeof_words):
    rows = fake_rows(2, dict_bytes, dict_size, 48.0, 48)
    (saving,) = cmp.slots_saving(rows)
    assert saving["saving"] == pytest.approx(1 - 48 / dict_bytes)
    assert saving["getsizeof_saving"] == pytest.approx(1 - 48 / dict_size)
    assert (saving["dict_getsizeof"], saving["slots_getsizeof"]) == (dict_size, 48)
    head, line, aside = cmp.slots_saving_lines(rows)
    assert sys.version.split()[0] in head and "40-60%" in head
    assert line.strip() == f"2 fields: 48 B against {dict_bytes:.0f} B: __slots__ {verdict}"
    assert aside.strip() == f"(sys.getsizeof would say {getsizeof_words})."
    assert line in cmp.report(rows)


def test_slots_statement_needs_both_kinds():
    rows = fake_rows(2, 80.0, 48, 48.0, 48)
    assert cmp.slots_saving(rows[:1]) == [] and cmp.slots_saving_lines(rows[1:]) == []


def test_cli_states_the_slots_saving_measured_here():
    out = run_cli("compare", "--n", "5000", "--fields", "2", "5", "--repeat", "1", "--no-rss",
                  "--kinds", "dict", "slots", "--json", "-q")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    by = {(r["kind"], r["fields"]): r for r in doc["rows"]}
    for s in doc["slots_saving"]:
        f = s["fields"]
        assert s["dict_true_bytes"] == by["dict", f]["true_bytes"]
        assert s["slots_true_bytes"] == by["slots", f]["true_bytes"]
        # the __slots__ instance is its header, GC header and fields, in one 16-byte block
        assert s["slots_true_bytes"] == pytest.approx(block(32 + 8 * f), abs=1.0)
        # and the dict instance costs more on every supported CPython, whatever getsizeof says
        assert s["saving"] > 0.2
    text = run_cli("compare", "--n", "5000", "--fields", "2", "5", "--repeat", "1",
                   "--no-rss", "--kinds", "dict", "slots", "-q").stdout
    head = f"__slots__ against __dict__ on {sys.implementation.name} {sys.version.split()[0]}"
    assert head in text
    for f in (2, 5):
        assert f"  {f} fields: " in text


# --- recordclass ------------------------------------------------------------------------------

RECORDCLASS = cmp.KINDS["recordclass"].available()


def test_recordclass_kind_hidden_without_the_package(monkeypatch):
    assert ("recordclass" in cmp.available_kinds()) == RECORDCLASS
    monkeypatch.setitem(sys.modules, "recordclass", None)  # import recordclass now fails
    assert "recordclass" not in cmp.available_kinds()
    with pytest.raises(ValueError, match="'recordclass' is not available"):
        objarena.compare(n=10, kinds=["recordclass"])


@pytest.mark.skipif(not RECORDCLASS, reason="recordclass does not import here")
@pytest.mark.parametrize("fields", [1, 2, 5])
def test_recordclass_row(fields):
    import recordclass

    n = 20_000
    (row,) = objarena.compare(fields=fields, n=n, kinds=["recordclass"], repeat=1, rss=False)
    assert row["arena"] is False and row["write_ns"] is not None
    # no GC header: a 16-byte object header and the fields, as a SlotObj
    assert row["getsizeof"] == 16 + 8 * fields
    # the same instances, built here and traced independently
    names = [f"f{i}" for i in range(fields)]
    cls = recordclass.make_dataclass("Rec", names)
    one = cls(*range(fields))
    assert not gc.is_tracked(one)
    one.f0 = 7  # mutable fields
    assert one.f0 == 7
    holder = [None] * n
    values = tuple(range(fields))
    gc.collect()
    tracemalloc.start()
    try:
        t0 = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            holder[i] = cls(*values)
        t1 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # one-time allocations (the loop's frame) are well under 1 B once divided by n
    assert row["in_use_bytes"] == pytest.approx((t1 - t0) / n, abs=1.0)
    assert row["true_bytes"] == pytest.approx(block(16 + 8 * fields), abs=1.0)


def test_native_dict_bytes_agree_with_tracemalloc_blocks():
    """The dict kind, whose attributes live apart from the object on 3.10-3.12."""
    n = 20_000
    (row,) = objarena.compare(fields=3, n=n, kinds=["dict"], repeat=1, rss=False)

    class Rec:
        def __init__(self, f0, f1, f2):
            self.f0 = f0
            self.f1 = f1
            self.f2 = f2

    holder = [None] * n
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(n):
            holder[i] = Rec(0, 1, 2)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()

    def occupied(snapshot):
        # obmalloc serves requests up to 512 bytes in 16-byte steps; the few larger ones
        # (none per instance here) are taken as requested: < 1 B per instance at this n
        return sum(block(t.size) if t.size <= 512 else t.size
                   for t in snapshot.traces)

    requested = sum(t.size for t in after.traces) - sum(t.size for t in before.traces)
    # The traces of the test's own snapshot objects and of the class's shared keys are
    # one-time costs: a few KiB, which divided by n stay under 1 B per instance.
    assert row["in_use_bytes"] == pytest.approx(requested / n, abs=1.0)
    assert row["true_bytes"] == pytest.approx((occupied(after) - occupied(before)) / n, abs=1.0)
    assert row["true_bytes"] > block(sys.getsizeof(holder[0]))  # getsizeof misses the values


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
    # Every supported version keeps its managed dict word and dict table where
    # _measure expects them (checked on a probe object, not by version number).
    assert _measure.managed_dict_layout() in ("plain", "tagged")
    assert _measure.dict_is_split({"a": 1}) is False
    assert _measure.existing_instance_dict(c) is None
    before = objarena.footprint(c)
    assert _measure.existing_instance_dict(c) is None  # the measurement changed nothing
    c.__dict__  # now it exists, and it costs
    assert _measure.existing_instance_dict(c) is not None
    assert objarena.footprint(c) > before


def test_cli_output_into_a_closed_pipe_has_no_traceback():
    """`python -m objarena compare --json | head -0`: the reader is gone before the
    first write."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "objarena", "compare", "--json", "--n", "200",
             "--fields", "1", "--repeat", "1", "--no-rss", "-q"],
            stdout=w, stderr=subprocess.PIPE, text=True, timeout=300,
            cwd=os.path.dirname(__file__))
    finally:
        os.close(w)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------
# The typed run: a numeric record, typed fields beside the others

def test_typed_run_kinds():
    typed_kinds = cmp.available_kinds(typed=True)
    assert typed_kinds[:2] == ["slots", "dataclass"] and typed_kinds[-2:] == ["SlotObj", "typed"]
    assert ("msgspec" in typed_kinds) == (importlib.util.find_spec("msgspec") is not None)
    assert "typed" not in cmp.available_kinds() and "msgspec" not in cmp.available_kinds()
    with pytest.raises(ValueError, match="not available in this build"):
        cmp.resolve_kinds(["typed"])
    with pytest.raises(ValueError, match="not available in the typed run"):
        cmp.resolve_kinds(["dict"], typed=True)


def test_typed_run_counts_the_float_objects():
    rows = cmp.compare(fields=2, n=N, kinds=["slots", "SlotObj", "typed"], repeat=1,
                       rss=False, typed=True)
    by = {r["kind"]: r for r in rows}
    assert all(r["label"].endswith(cmp.TYPED_LABEL) for r in rows)
    # native: the record's blocks and two 24-byte floats in 32-byte blocks each
    native_record = block(sys.getsizeof(types.new_class("X", (), {},
                          lambda ns: ns.__setitem__("__slots__", ("a", "b")))()))
    assert by["slots"]["true_bytes"] == pytest.approx(native_record + 2 * block(24), abs=1)
    # SlotObj: 32-byte blocks in the arena, the floats outside it
    assert by["SlotObj"]["in_use_bytes"] == pytest.approx(32 + 2 * block(24), abs=1)
    # typed: the numbers are in the 32-byte block
    assert by["typed"]["in_use_bytes"] == pytest.approx(32, abs=0.5)
    assert by["typed"]["getsizeof"] == 32
    for r in rows:
        assert r["read_ns"] is not None and r["write_ns"] is not None
        assert r["gc_ms"] is not None


def test_cli_typed():
    out = run_cli("compare", "--typed", "--fields", "2", "--n", "2000", "--repeat", "1",
                  "--no-rss", "-q", "--kinds", "slots", "typed")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2].startswith("slots") and lines[3].startswith("typed")
    assert "a float of its own" in out.stdout
