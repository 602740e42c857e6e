#!/usr/bin/env python3
"""Reference-leak hunt for objarena, in the manner of CPython's `regrtest -R`.

Runs the pytest suite as usual (reported as usual), and after each test module
runs that module's tests again WARMUP + ROUNDS times in the same process,
silently.  After every silent round it clears the interpreter's caches,
collects garbage and records

  - sys.gettotalrefcount()                      (debug builds of CPython only),
  - objarena.default_arena.stats()["objects"]   (live arena objects),
  - sys.getallocatedblocks()                    (shown, not judged).

A module leaks when a counter grows in every one of the last ROUNDS rounds
(noise that comes and goes is ignored, as by CPython's -R).  The tests of a
leaking module are then repeated one by one to name the tests that leak.
Every leak, and every test that passes once but fails when run again, is added
to pytest's report as a failure, so pytest's closing line and exit status say so.

Usage (from the repository root, with objarena installed, not the work tree):

    python tools/refleak.py [--warmup N] [--rounds N] [--max-seconds S]
                            [--max-culprits N] [pytest arguments...]

Default: 1 warm-up and 3 measured rounds over `tests`; tests that fail (or
xfail) in the reported run, and tests slower than 10 s, are not repeated.
Without sys.gettotalrefcount (a release build) only arena objects are judged.
"""
import argparse
import array
import functools
import gc
import os
import shutil
import sys
import time

import pytest
from _pytest.reports import TestReport
from _pytest.runner import runtestprotocol


def clear_caches():
    """Drop the caches that fill up as tests run (a subset of regrtest's)."""
    mods = sys.modules
    if "re" in mods:
        mods["re"].purge()
    if "linecache" in mods:
        mods["linecache"].clearcache()
    for cleanup in getattr(mods.get("typing"), "_cleanups", ()):
        cleanup()
    if "copyreg" in mods:
        mods["copyreg"]._extension_cache.clear()
    clear_hypothesis_caches()
    # 3.13 added sys._clear_internal_caches() (the type cache and more); 3.15
    # deprecates sys._clear_type_cache(), a DeprecationWarning (an error here).
    (getattr(sys, "_clear_internal_caches", None) or sys._clear_type_cache)()


def clear_hypothesis_caches():
    """Hypothesis keeps bounded caches (strategies, constraints, coverage
    tags) that take many rounds to fill: empty them, whatever the version."""
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "hypothesis" or name.startswith("hypothesis.")):
            continue
        for attr, value in list(vars(mod).items()):
            if type(value).__name__ in ("LRUCache", "LRUReusedCache", "GenericCache"):
                clear = getattr(value, "clear", None) or getattr(value.cache, "clear", None)
                if clear is not None:
                    clear()
            elif attr.endswith("_CACHE") and type(value) is dict:
                value.clear()
            elif callable(getattr(value, "cache_clear", None)) and \
                    getattr(value, "__module__", None) == name:
                value.cache_clear()


def snapshot():
    """(total refcount, default arena's live objects, allocated blocks)."""
    clear_caches()
    objarena = sys.modules.get("objarena")
    for _ in range(2):
        gc.collect()
        if objarena is not None and hasattr(objarena, "collect"):
            objarena.collect()
    refs = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else 0
    objects = objarena.default_arena.stats()["objects"] if objarena is not None else 0
    return refs, objects, sys.getallocatedblocks()


def forget_pytest_state(items):
    """Drop what pytest piles up on an item run again and again."""
    for item in items:
        # Captured output and log sections, already copied into the reports.
        sections = getattr(item, "_report_sections", None)
        if isinstance(sections, list):
            sections.clear()
    prune_fixture_finalizers(items)


def prune_fixture_finalizers(items):
    """Drop the finalizers that pytest piles up on higher-scoped fixtures.

    Each time a function-scoped fixture (tmp_path, say) runs, pytest adds
    `partial(fixturedef.finish, request=...)` to the finalizers of every
    fixture it depends on (tmp_path_factory, session-scoped), and they stay
    until that fixture ends: growth that is pytest's, not the test's.  Once
    the function-scoped fixture has finished, calling its finish again does
    nothing, so dropping such an entry changes nothing but the count."""
    seen = set()
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        for defs in getattr(info, "name2fixturedefs", {}).values():
            for fd in defs:
                fins = getattr(fd, "_finalizers", None)
                if id(fd) in seen or not isinstance(fins, list) or fd.scope == "function":
                    continue
                seen.add(id(fd))
                fins[:] = [f for f in fins if not _stale_finish(f)]


def _stale_finish(fin):
    if not isinstance(fin, functools.partial):
        return False
    owner = getattr(fin.func, "__self__", None)
    return getattr(fin.func, "__name__", "") == "finish" and \
        hasattr(owner, "cached_result") and owner.cached_result is None


# The smallest growth per round that counts as a leak of references.  The
# measuring adds nothing of its own (see RefleakPlugin.measure) and the caches
# that fill as tests run are emptied before each snapshot, so a module that
# does not leak measures 0 in every round; a test that keeps one object per
# run measures about 1.  Arena objects are judged exactly.
REF_NOISE = 1


def leaks(deltas, floor=1):
    """CPython's rule: a counter leaks if it grew in every measured round (by
    at least `floor`)."""
    return bool(deltas) and all(d >= floor for d in deltas)


class RefleakPlugin:
    def __init__(self, warmup, rounds, max_seconds=10.0, max_culprits=5):
        self.warmup = warmup
        self.rounds = rounds
        self.max_seconds = max_seconds
        self.max_culprits = max_culprits
        self.silent = False
        self.silent_reports = []
        self.failed = set()         # node ids already reported as failed
        self.xfailed = set()        # node ids of expected failures
        self.slow = set()           # node ids of tests too slow to repeat
        self.findings = []          # first lines, for the terminal summary
        self.judge_refs = hasattr(sys, "gettotalrefcount")

    # -- hooks -------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        """While silent, run an item without logging its reports.  The hook
        wrappers (warnings as errors, unraisable exceptions, ...) still wrap
        the run, as in a normal run."""
        if not self.silent:
            return None
        self.silent_reports.extend(runtestprotocol(item, log=False, nextitem=nextitem))
        return True

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.add(report.nodeid)
        if hasattr(report, "wasxfail"):
            self.xfailed.add(report.nodeid)
        if not self.silent and report.duration > self.max_seconds:
            self.slow.add(report.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} errors during collection")
        if session.config.option.collectonly:
            return True
        groups = {}
        for item in session.items:
            groups.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
        modules = list(groups.items())
        for gi, (module, items) in enumerate(modules):
            after = modules[gi + 1][1][0] if gi + 1 < len(modules) else None
            # 1. The normal, reported run; the module's fixtures are kept for
            #    the silent rounds.
            self.run_items(session, items, loop_to=items[0])
            # 2. The silent rounds, over the tests that did not fail: a failing
            #    test is reported already, and what its failures hold is no
            #    leak; an expected failure (xfail) may leak by its nature.
            #    Tests slower than max_seconds are not repeated either.
            passed = [i for i in items if i.nodeid not in self.failed
                      and i.nodeid not in self.xfailed and i.nodeid not in self.slow]
            if passed and not (session.shouldfail or session.shouldstop):
                self.hunt(session, module, passed)
            # Tear down the module's fixtures as the normal loop would.
            try:
                session._setupstate.teardown_exact(after)
            except Exception as exc:
                self.fail(items[-1], f"tearing down the fixtures of {module} "
                                     f"failed: {exc!r}", nodeid=module)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
        return True

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.section("refleak")
        mode = "refcounts and arena objects" if self.judge_refs else \
            "arena objects only (no sys.gettotalrefcount: not a debug build)"
        terminalreporter.write_line(f"{self.warmup} warm-up + {self.rounds} measured "
                                    f"rounds per module; judged: {mode}")
        if self.slow:
            terminalreporter.write_line(
                f"not repeated, slower than {self.max_seconds:g} s: " + ", ".join(sorted(self.slow)))
        if not self.findings:
            terminalreporter.write_line("no leaks, no failures on repetition")
        for text in self.findings:
            terminalreporter.write_line("refleak: " + text.splitlines()[0])

    # -- the hunt ------------------------------------------------------------
    def hunt(self, session, module, items):
        t0 = time.perf_counter()
        deltas, failures = self.measure(session, items)
        verdict = self.judge(deltas)
        self.write(session, f"refleak {module}: {self.describe(deltas)} "
                            f"[{time.perf_counter() - t0:.1f}s] "
                            f"{'LEAK' if verdict else 'ok'}")
        self.report_failures(items, failures)
        if not verdict:
            return
        # 3. Name the leaking tests: each one alone, repeated.  A test that
        #    fails keeps its failure's objects: it is reported as failing.
        culprits = 0
        for n, item in enumerate(items):
            if item.nodeid in self.failed:
                continue
            if culprits >= self.max_culprits:
                self.write(session, f"refleak {module}: {len(items) - n} more tests not "
                                    f"checked one by one (found {culprits} leaking)")
                break
            d, f = self.measure(session, [item])
            self.report_failures([item], f)
            if not f and self.judge(d):
                culprits += 1
                self.fail(item, f"{item.nodeid} leaks when repeated: {self.describe(d)}")
        if not culprits and not any(i.nodeid in self.failed for i in items):
            self.fail(items[0], f"{module} leaks when its tests run together: "
                                f"{self.describe(deltas)}", nodeid=module)

    def run_items(self, session, items, loop_to):
        if loop_to is items[-1]:
            # Keep the fixtures of the item's parents, not the item's own.
            loop_to = loop_to.parent
        for i, item in enumerate(items):
            nextitem = items[i + 1] if i + 1 < len(items) else loop_to
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail or session.shouldstop:
                return

    def measure(self, session, items):
        """Run `items` warmup + rounds times silently; return the deltas of
        the counters over the measured rounds, and the failures.

        The measuring itself must hold no more objects from one round to the
        next: the counters go into an array of C integers made beforehand,
        not into Python ints kept alive (each would count as a reference)."""
        tmp = TmpReuse(session)
        self.silent = True
        failures = []
        n = self.warmup + self.rounds
        counts = array.array("q", bytes(8 * 3 * (n + 1)))
        try:
            forget_pytest_state(items)
            counts[0:3] = array.array("q", snapshot())
            for rnd in range(1, n + 1):
                tmp.reset()
                self.silent_reports = []
                self.run_items(session, items, loop_to=items[0])
                self.collect_failures(rnd, failures)
                self.silent_reports = []
                forget_pytest_state(items)
                counts[3 * rnd:3 * rnd + 3] = array.array("q", snapshot())
        finally:
            self.silent = False
            self.silent_reports = []
            tmp.reset()
        rows = [tuple(counts[3 * r:3 * r + 3]) for r in range(n + 1)]
        measured = rows[self.warmup:]
        deltas = [tuple(b[k] - a[k] for k in range(3)) for a, b in zip(measured, measured[1:])]
        return deltas, failures

    def collect_failures(self, rnd, failures):
        for rep in self.silent_reports:
            if rep.failed:
                failures.append((rnd, rep))

    def judge(self, deltas):
        refs = [d[0] for d in deltas]
        objects = [d[1] for d in deltas]
        return (self.judge_refs and leaks(refs, REF_NOISE)) or leaks(objects)

    def describe(self, deltas):
        refs = [d[0] for d in deltas]
        objects = [d[1] for d in deltas]
        blocks = [d[2] for d in deltas]
        head = f"refs {refs}, " if self.judge_refs else ""
        return f"{head}arena objects {objects}, blocks {blocks}"

    def report_failures(self, items, failures):
        for rnd, rep in failures:
            if rep.nodeid in self.failed:
                continue
            item = next((i for i in items if i.nodeid == rep.nodeid), items[0])
            self.fail(item, f"{rep.nodeid} passes once but fails when run again "
                            f"(silent round {rnd}, {rep.when}):\n{rep.longreprtext}",
                      nodeid=rep.nodeid)

    def fail(self, item, text, nodeid=None):
        """Add a failure to pytest's report (its counts and exit status)."""
        self.findings.append(text)
        rep = TestReport(nodeid=nodeid or item.nodeid, location=item.location,
                         keywords={}, outcome="failed", longrepr=f"refleak: {text}",
                         when="call", sections=[], duration=0.0)
        item.ihook.pytest_runtest_logreport(report=rep)

    def write(self, session, line):
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(line)
        else:
            print(line)


class TmpReuse:
    """Between silent rounds, remove the directories that the round made in
    pytest's base temporary directory (tmp_path, tmp_path_factory.mktemp) and
    rewind pytest's counters for their numbered names, so that every round
    gets the same names again: new names would be interned for good (pathlib
    interns path parts) and count as a leak."""

    def __init__(self, session):
        self.factory = getattr(session.config, "_tmp_path_factory", None)
        self.base = self.factory.getbasetemp() if self.factory is not None else None
        self.keep = set(os.listdir(self.base)) if self.base is not None else set()
        # pytest >= 9 numbers with per-prefix counters; older ones list the
        # directory, for which removing the directories is enough.
        counters = getattr(self.factory, "_next_number", None)
        self.counters = dict(counters) if isinstance(counters, dict) else None

    def reset(self):
        if self.base is None:
            return
        for name in os.listdir(self.base):
            if name in self.keep:
                continue
            path = os.path.join(self.base, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        if self.counters is not None:
            self.factory._next_number.clear()
            self.factory._next_number.update(self.counters)


def main(argv=None):
    p = argparse.ArgumentParser(
        usage="%(prog)s [--warmup N] [--rounds N] [--max-seconds S] [--max-culprits N] "
              "[pytest args...]",
        description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--warmup", type=int, default=1,
                   help="silent rounds before the measured ones (default 1; the reported "
                        "run warms up too)")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    p.add_argument("--max-seconds", type=float, default=10.0,
                   help="do not repeat a test whose reported run took longer (default 10)")
    p.add_argument("--max-culprits", type=int, default=5,
                   help="stop naming a module's leaking tests after this many (default 5)")
    args, pytest_args = p.parse_known_args(argv)
    if args.rounds < 2:
        p.error("--rounds must be at least 2")
    if not hasattr(sys, "gettotalrefcount"):
        print("refleak: not a debug build of CPython; judging arena objects only",
              file=sys.stderr)
    plugin = RefleakPlugin(args.warmup, args.rounds, args.max_seconds, args.max_culprits)
    return int(pytest.main(["-p", "no:cacheprovider", *(pytest_args or ["tests"])],
                           plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main())
