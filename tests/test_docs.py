"""Every code example in the documentation runs, and prints what the page says it prints.

Pages: README.md and every docs/*.md (a new page is covered as soon as it exists).
Each page is one test, so a failure names the page.

```python blocks
    The blocks of one page run in order, in one namespace, as one script would: a module
    named ``__main__`` (it stands in ``sys.modules`` while the page runs, so classes
    defined there pickle).  A block that raises fails the page.  A block that cannot run
    as it stands is not a ```python block: use ```text, ```c, ```sh and so on.

Expected output, two forms:

    print(sys.getsizeof(u))        # 32: header + 2 fields
        A ``print(...)`` call with a comment after it on the same line: every output of
        that call (it may run in a loop or in a function called later) must match the
        comment, and the call must print at least once.  Not checked: a comment that
        begins with ``e.g.`` (an illustration: ``# e.g. 2 40%``), the comment of a print
        that writes several lines (check those with ``# prints:``), and a trailing
        comment on any line that is not a print call.

    del x
    # prints: __del__ x
    # prints: done
        Lines ``# prints: TEXT`` in the first column, right after a statement of the
        block's top level, are the output of that whole statement, one line each, in
        order: exactly these lines and no others.

Matching, the same for both forms:

    - The output must equal TEXT, or TEXT may go on with an explanation after the
      output: after ``": "``, ``"; "``, ``" ("``, or a space and a lowercase word
      (``# 1 unreachable object found`` checks that ``1`` was printed).
    - ``...`` in TEXT matches any text (``<__main__.C object at 0x...>``).
    - Output that changes with the Python version gives one TEXT per version, separated
      by `` | ``: ``# 3.10: 48 | 3.11: 56 | 3.12+: 48``.  A version is ``3.N``,
      ``3.N+`` (and later) or ``3.N-3.M``; several may share a TEXT, comma separated
      (``3.10, 3.12+: 48``).  The running version must be listed.

A ``print`` with no such comment, and output no comment claims, are not checked.

```sh blocks
    A command ``python -m objarena ARGS`` (any ``python``, ``python3``, ``.venv/bin/python``
    …, alone or within ``&&`` / ``;`` chains) runs as ``objarena.__main__.main(ARGS +
    SMALL)``, where SMALL makes it quick (``--n 2000 --repeat 1 --no-rss --quiet``, each
    only where the subcommand has that option; they come last, so they win).  A
    redirection (``> out.json``) is dropped: the output is captured instead.  The command
    runs in a temporary directory, must exit with status 0 and must print something.  Every other shell command (``pip install``, ``.ci/run``, …) is not run.
"""
import argparse
import builtins
import contextlib
import gc
import io
import os
import re
import shlex
import subprocess
import sys
import tokenize
import types
import ast
from pathlib import Path

import pytest

import objarena

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

SMALL = {"--n": "2000", "--repeat": "1", "--no-rss": None, "--quiet": None}

_FENCE = re.compile(r"^( *)```(\S*)\s*$")


def fenced_blocks(text):
    """(language, first line number of the code, code) for every fenced block."""
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start, body = len(m.group(1)), m.group(2).lower(), i + 2, []
        i += 1
        while i < len(lines) and not re.match(r"^ *```\s*$", lines[i]):
            line = lines[i]
            body.append(line[indent:] if line[:indent] == " " * indent else line.lstrip())
            i += 1
        blocks.append((lang, start, "\n".join(body) + "\n"))
        i += 1
    return blocks


# -- expected output ------------------------------------------------------------------------

_VSPEC = r"3\.\d+(?:\+|-3\.\d+)?"
_VALT = re.compile(rf"^({_VSPEC}(?:, {_VSPEC})*): (.*)$", re.S)
_EXPLAIN = re.compile(r": |; | \(| (?=[a-z])")


def _version_in(spec, version):
    for part in spec.split(", "):
        if part.endswith("+"):
            if version >= _minor(part[:-1]):
                return True
        elif "-" in part:
            lo, hi = part.split("-")
            if _minor(lo) <= version <= _minor(hi):
                return True
        elif version == _minor(part):
            return True
    return False


def _minor(text):
    major, minor = text.split(".")
    return int(major), int(minor)


def expected_for_version(text, version=sys.version_info[:2]):
    """The TEXT that applies to this Python, or None when the comment lists other versions."""
    parts = text.split(" | ")
    alts = [_VALT.match(p) for p in parts]
    if not all(alts):
        return text
    for m in alts:
        if _version_in(m.group(1), version):
            return m.group(2)
    return None


def output_matches(out, text):
    """Whether the printed line `out` matches the comment TEXT (see the module docstring)."""
    candidates = [text] + [text[:m.start()] for m in _EXPLAIN.finditer(text)]
    for cand in candidates:
        if not cand and out:
            continue
        pattern = ".*".join(re.escape(piece) for piece in cand.split("..."))
        if re.fullmatch(pattern, out, re.S):
            return True
    return False


def expectations(code):
    """Trailing comments of print lines, and ``# prints:`` lines, by page line number."""
    on_print, prints = {}, {}
    toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
    by_line = {}
    for t in toks:
        by_line.setdefault(t.start[0], []).append(t)
    for line, lt in by_line.items():
        comment = [t for t in lt if t.type == tokenize.COMMENT]
        if not comment:
            continue
        c = comment[-1]
        text = c.string[1:].strip()
        code_toks = [t for t in lt if t.type not in (tokenize.COMMENT, tokenize.NL,
                                                     tokenize.NEWLINE, tokenize.INDENT,
                                                     tokenize.DEDENT)]
        if not code_toks:
            if c.start[1] == 0 and re.match(r"#\s*prints:", c.string):
                prints[line] = re.sub(r"^#\s*prints:\s?", "", c.string).rstrip()
            continue
        if text.startswith("e.g."):
            continue
        for a, b in zip(code_toks, code_toks[1:]):
            if a.type == tokenize.NAME and a.string == "print" and b.string == "(":
                on_print[line] = text
                break
    return on_print, prints


# -- running a page -------------------------------------------------------------------------

class _Page:
    def __init__(self, path):
        self.path = path
        self.filename = str(path)
        self.failures = []
        self.printed = {}  # line -> [text of each print() call made from that line]
        self.transcript = io.StringIO()
        self.module = types.ModuleType("__main__")
        self.module.__dict__["__file__"] = self.filename
        self.module.__dict__["print"] = self._print

    def _print(self, *args, sep=" ", end="\n", file=None, flush=False):
        if file is not None and file is not sys.stdout:
            builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
            return
        buf = io.StringIO()
        builtins.print(*args, sep=sep, end=end, file=buf)
        sys.stdout.write(buf.getvalue())
        frame = sys._getframe(1)
        if frame.f_code.co_filename == self.filename:
            self.printed.setdefault(frame.f_lineno, []).append(buf.getvalue())

    def fail(self, line, message):
        self.failures.append(f"{self.path.name}:{line}: {message}")

    def check(self, line, out, text, what):
        want = expected_for_version(text)
        if want is None:
            self.fail(line, f"{what} lists no output for Python "
                            f"{sys.version_info[0]}.{sys.version_info[1]}: {text!r}")
        elif not output_matches(out, want):
            self.fail(line, f"{what}: printed {out!r}, the page says {want!r}")

    def run_python(self, start, code):
        code = "\n" * (start - 1) + code  # line numbers are the page's
        tree = ast.parse(code, self.filename)
        on_print, prints = expectations(code)
        ends = [(stmt.end_lineno, stmt) for stmt in tree.body]  # in order
        owner = {}  # '# prints:' line -> the top-level statement just before it
        for line in prints:
            before = [s for end, s in ends if end < line]
            owner[line] = before[-1] if before else None
        for stmt in tree.body:
            code_obj = compile(ast.Module(body=[stmt], type_ignores=[]), self.filename, "exec")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    exec(code_obj, self.module.__dict__)
                finally:
                    self.transcript.write(out.getvalue())
            want = [(line, prints[line]) for line in sorted(prints) if owner[line] is stmt]
            if want:
                got = out.getvalue().splitlines()
                for i, (line, text) in enumerate(want):
                    if i >= len(got):
                        self.fail(line, f"'# prints:' expects {text!r}, nothing more was printed")
                    else:
                        self.check(line, got[i], text, "'# prints:'")
                if len(got) > len(want):
                    self.fail(want[-1][0], f"printed more than the '# prints:' lines say: "
                                           f"{got[len(want):]!r}")
        for line, text in on_print.items():
            outs = self.printed.get(line)
            if not outs:
                self.fail(line, f"the print call never ran (expected {text!r})")
                continue
            for out in outs:
                if out.endswith("\n"):
                    out = out[:-1]
                if "\n" not in out:  # several lines: the comment only describes them
                    self.check(line, out, text, "print")

    def run_sh(self, start, code):
        for offset, raw in enumerate(code.split("\n")):
            for argv in objarena_commands(raw):
                self.run_main(start + offset, argv)

    def run_main(self, line, argv):
        from objarena import __main__ as cli
        argv = argv + small_options(cli, argv)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                status = cli.main(argv)
            except SystemExit as e:
                status = e.code
        printed = out.getvalue()
        self.transcript.write(printed)
        if status not in (0, None):
            self.fail(line, f"python -m objarena {' '.join(argv)} exited with {status!r}")
        elif not printed.strip():
            self.fail(line, f"python -m objarena {' '.join(argv)} printed nothing")


def objarena_commands(line):
    """The argument lists of the ``python -m objarena ...`` commands on one shell line."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current, redirected = [], [], False
    for tok in lexer:
        if redirected:  # the file of a redirection: not an argument
            redirected = False
        elif tok in ("&&", "||", ";", "|", "&"):
            commands.append(current)
            current = []
        elif tok in (">", ">>", "<", ">&", "&>"):
            redirected = True
        else:
            current.append(tok)
    commands.append(current)
    found = []
    for cmd in commands:
        for i in range(1, len(cmd) - 1):
            if (cmd[i] == "-m" and cmd[i + 1] == "objarena"
                    and re.fullmatch(r"python[\d.]*", os.path.basename(cmd[i - 1]))):
                found.append(cmd[i + 2:])
                break
    return found


def small_options(cli, argv):
    """The options of SMALL that the subcommand in argv has (they come last, so they win)."""
    built = cli.build_parser()
    parser = built[0] if isinstance(built, tuple) else built
    sub = None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and argv and argv[0] in action.choices:
            sub = action.choices[argv[0]]
    if sub is None:
        return []
    extra = []
    for opt, value in SMALL.items():
        if opt in sub._option_string_actions:
            extra += [opt] if value is None else [opt, value]
    return extra


@contextlib.contextmanager
def _collectors_restored():
    """Start from clean collectors; undo what a page changes in CPython's gc and the default arena."""
    a = objarena.default_arena
    saved = (gc.get_threshold(), gc.isenabled(), gc.get_debug(), list(gc.callbacks),
             a.get_threshold(), a.isenabled(), a.get_debug(), list(a.callbacks),
             gc.get_freeze_count(), a.get_freeze_count())
    gc.collect()
    a.collect()
    main = sys.modules.get("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
        gc.set_threshold(*saved[0])
        (gc.enable if saved[1] else gc.disable)()
        gc.set_debug(saved[2])
        gc.callbacks[:] = saved[3]
        a.set_threshold(*saved[4])
        (a.enable if saved[5] else a.disable)()
        a.set_debug(saved[6])
        a.callbacks[:] = saved[7]
        if not saved[8]:
            gc.unfreeze()
        if not saved[9]:
            a.unfreeze()
        gc.garbage.clear()
        a.garbage.clear()


# A page that draws runs in a child interpreter: drawing runs matplotlib and numpy,
# C extensions built for a release CPython, under which a debug interpreter's total
# refcount (what the refleak hunt reads) drifts for the rest of the process.
IN_CHILD = "OBJARENA_DOCS_PAGE_IN_CHILD"


def draws(text):
    return "plot(" in text or "--plot" in text


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_examples(page, tmp_path, monkeypatch):
    text = page.read_text(encoding="utf-8")
    if draws(text) and os.environ.get(IN_CHILD) != "1":
        child = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"{__file__}::test_page_examples[{page.relative_to(ROOT)}]"],
            env={**os.environ, IN_CHILD: "1"}, cwd=ROOT,
            capture_output=True, text=True, timeout=900)
        assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-2000:]
        assert "1 passed" in child.stdout
        return
    blocks = fenced_blocks(text)
    runnable = [b for b in blocks if b[0] in ("python", "py", "sh", "bash", "shell", "console")]
    if not runnable:
        return
    monkeypatch.chdir(tmp_path)
    run = _Page(page)
    with _collectors_restored():
        sys.modules["__main__"] = run.module
        try:
            for lang, start, code in runnable:
                if lang in ("python", "py"):
                    run.run_python(start, code)
                else:
                    run.run_sh(start, code)
        finally:
            # The page ends as a program does: its globals are cleared, which
            # frees the cycles that ran through them (methods -> globals).
            run.module.__dict__.clear()
    assert not run.failures, (
        "\n".join(run.failures) + "\n--- output of the page's examples (the end) ---\n"
        + run.transcript.getvalue()[-4000:])


def test_readme_has_examples():
    langs = [b[0] for b in fenced_blocks((ROOT / "README.md").read_text(encoding="utf-8"))]
    assert "python" in langs


# The convention itself, on small cases.

@pytest.mark.parametrize("out, text, ok", [
    ("32", "32", True),
    ("32", "32: header and two fields", True),
    ("1", "1 unreachable object found", True),
    ("1", "1 2", False),
    ("1", "1.5", False),
    ("{'y': 2, 'z': 3}", "{'y': 2, 'z': 3}: a real dict", True),
    ("<C object at 0x7f00>", "<C object at 0x...>", True),
    ("33", "32", False),
    ("", "", True),
])
def test_output_matches(out, text, ok):
    assert output_matches(out, text) is ok


def test_version_alternatives():
    text = "3.10: 48 | 3.11: 56 | 3.12+: 40"
    assert expected_for_version(text, (3, 10)) == "48"
    assert expected_for_version(text, (3, 11)) == "56"
    assert expected_for_version(text, (3, 13)) == "40"
    assert expected_for_version("3.10-3.11, 3.13: a | 3.12: b", (3, 13)) == "a"
    assert expected_for_version("3.11: 56", (3, 12)) is None
    assert expected_for_version("{'a': 1} | x", (3, 12)) == "{'a': 1} | x"


def test_objarena_commands():
    line = "python3 -m venv .venv && .venv/bin/python -m objarena compare --fields 2  # run"
    assert objarena_commands(line) == [["compare", "--fields", "2"]]
    assert objarena_commands("pip install '.[test]'") == []
    assert objarena_commands("python -m objarena compare --json > c.json  # x") == [
        ["compare", "--json"]]
