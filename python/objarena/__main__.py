"""python -m objarena compare [--fields 2 5 10] [--n N] [--kinds ...] [--json] [--plot FILE.png]"""
import argparse
import json
import os
import subprocess
import sys

# The package attribute objarena.compare is the function; the module is in sys.modules.
from . import compare as _compare_function  # noqa: F401  (imports the submodule)

cmp = sys.modules[__package__ + ".compare"]

DEFAULT_FIELDS = (2, 5)
DEFAULT_N = 100_000


def _positive_int(text):
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _field_count(text):
    v = _positive_int(text)
    if v > 250:
        raise argparse.ArgumentTypeError(f"at most 250 fields, got {v}")
    return v


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m objarena",
        description="Measure what Python objects really cost, natively and in an objarena arena.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    p = sub.add_parser(
        "compare",
        help="compare native records with objarena records",
        description="Build N instances of each kind and print, side by side, sys.getsizeof, "
                    "the true bytes per instance, creation and attribute times and the cost "
                    "of a full collection.",
    )
    avail = cmp.available_kinds()
    p.add_argument("--fields", nargs="+", type=_field_count, default=list(DEFAULT_FIELDS),
                   metavar="F", help="fields per instance, one table row group each "
                   f"(default: {' '.join(map(str, DEFAULT_FIELDS))})")
    p.add_argument("--n", type=_positive_int, default=DEFAULT_N, metavar="N",
                   help=f"instances per measurement (default: {DEFAULT_N:_})")
    p.add_argument("--kinds", nargs="+", metavar="KIND",
                   help=f"kinds to measure (default: all available: {' '.join(avail)})")
    p.add_argument("--typed", action="store_true",
                   help="a numeric record (a float of its own per field) as "
                        f"{', '.join(cmp.available_kinds(typed=True))}: bytes include the "
                        "float objects; 'typed' stores them in the object (f64 fields)")
    p.add_argument("--repeat", type=_positive_int, default=5, metavar="R",
                   help="timed runs per figure; the best is kept (default: 5)")
    p.add_argument("--no-rss", action="store_true",
                   help="skip the resident-memory cross-check (a child process per row)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON document instead of the table (schema: docs/compare.md)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw bar charts of bytes and times into FILE.png (another "
                        f"suffix such as .svg picks that format); needs matplotlib: {cmp.PLOT_HINT}")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return parser, p


# Run in a child process: the formats that matplotlib's Agg canvas writes.
_PLOT_CHECK = ("from matplotlib.backends.backend_agg import FigureCanvasAgg; "
               "print(*FigureCanvasAgg.get_supported_filetypes())")


def _check_plot(p, path):
    """Fail now, as a usage error, if --plot could not be written after measuring.

    matplotlib is tried in a child process: imported here, its tens of thousands of
    objects would be in every gc.collect() that compare times.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        p.error(f"argument --plot: no such directory: {folder!r}")
    try:
        out = subprocess.run([sys.executable, "-c", _PLOT_CHECK],
                             capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        p.error(f"argument --plot: cannot check for matplotlib: {e}")
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or ["it does not import"])[-1]
        p.error(f"argument --plot: needs matplotlib ({why}): {cmp.PLOT_HINT}")
    try:
        cmp.plot_format(path, out.stdout.split())
    except ValueError as e:
        p.error(f"argument --plot: {e}")


def main(argv=None):
    parser, p = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compare":
        try:
            kinds = cmp.resolve_kinds(args.kinds, args.typed)
        except (ValueError, TypeError) as e:
            p.error(str(e))
        if args.plot is not None:
            _check_plot(p, args.plot)

        def progress(msg):
            print(f"objarena compare: {msg}", file=sys.stderr, flush=True)

        rows = cmp.compare(fields=args.fields, n=args.n, kinds=kinds, repeat=args.repeat,
                           rss=not args.no_rss, progress=None if args.quiet else progress,
                           typed=args.typed)
        if args.json:
            json.dump(cmp.to_json(rows), sys.stdout, indent=2)
            print()
        else:
            print(cmp.report(rows))
        if args.plot is not None:
            try:
                cmp.plot(rows, args.plot)
            except (ImportError, OSError) as e:
                print(f"objarena compare: cannot write the plot: {e}", file=sys.stderr)
                return 1
            if not args.quiet:
                progress(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`... --json | head`): no traceback, as the
        # signal module's documentation recommends; stdout goes to devnull so
        # that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)
