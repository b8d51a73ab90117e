"""The lesson notebooks: ``python -m tinysegnet.lessons student OUTDIR``, ``... run`` and
``... grade NOTEBOOK...``.

``student OUTDIR`` writes the students' release of every lesson: in each code cell tagged
``solution`` the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become a
``# YOUR CODE HERE`` stub that raises NotImplementedError, the derivations that follow the
checks (cells tagged ``derivation``) are left out (``--instructor`` keeps them), outputs are
cleared. Cells tagged ``check`` stay, so they fail until the student has a correct answer.

``run [NAME...] [--out DIR]`` executes lessons top to bottom and saves them with fresh
outputs: into DIR, or in place (how the committed figures are kept from going stale).

``grade NOTEBOOK...`` grades submissions, each in a sandbox of its own
(:mod:`tinysegnet.course.grading`), and prints, per student and exercise, pass or fail with
the check's message; ``--csv`` / ``--json`` save the class's results. Exit status 0 when
every exercise passed, 1 when one failed, 2 for misuse.
"""

import csv
import dataclasses
import io
import os
import re
import secrets
import sys
import time

from . import cli
from .course import LESSONS_DIR, grading, lesson_paths, sandbox
from .files import atomic_path, strict_json, write_text

SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*\n?",
                      re.M | re.S)
STUB = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError(\"exercise: write this part\")\n"


def strip_solutions(source):
    """The cell source with every solution region replaced by the stub."""
    return SOLUTION.sub(lambda m: STUB.format(indent=m.group("indent")), source)


def student_copy(notebook, instructor=False):
    """A copy of ``notebook`` (an nbformat node) with solutions stubbed and outputs cleared;
    the derivations that follow the checks (cells tagged ``derivation``) are left out of the
    students' release and kept in the instructor's."""
    import copy
    nb = copy.deepcopy(notebook)
    if not instructor:
        nb.cells = [c for c in nb.cells if "derivation" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "solution" in cell.metadata.get("tags", []):
            stubbed = strip_solutions(cell.source)
            if stubbed == cell.source:
                raise ValueError(f"a cell tagged 'solution' has no ### BEGIN SOLUTION block: "
                                 f"{cell.source[:60]!r}")
            cell.source = stubbed
        cell.outputs, cell.execution_count = [], None
    return nb


def write_atomic(nb, path):
    import nbformat
    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)


def execute(nb, cwd, timeout=300, allow_errors=False):
    """Run a notebook in place (nbclient, the python3 kernel, working folder ``cwd``). The
    kernel's start-up warning about TCP on this machine's loopback is not shown: it is the
    kernel's log, not the lesson's output, and it listed among a run's results as an alarm."""
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                   extra_arguments=["--IPKernelApp.log_level=ERROR"],
                   resources={"metadata": {"path": cwd}}).execute()
    return nb


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.lessons", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write student copies with the solutions (and derivations) removed")
    s.add_argument("outdir")
    s.add_argument("--instructor", action="store_true", help="keep the derivations that follow the checks")
    r = sub.add_parser("run", help="re-execute the lessons and save their outputs")
    r.add_argument("names", nargs="*", help="only lessons whose file name contains one of these")
    r.add_argument("--out", metavar="DIR",
                   help="write the executed notebooks into DIR (default: in place, over lessons/)")
    r.add_argument("--overwrite", action="store_true", help="replace notebooks already in --out")
    g = sub.add_parser("grade", help="run submitted notebooks and report every exercise")
    g.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    g.add_argument("--csv", help="also write one row per student and exercise to this CSV file")
    g.add_argument("--json", help="also write the results to this JSON file")
    g.add_argument("--seed", type=cli.non_negative_int,
                   help="the cases' seed (default: a new one, printed); keep it to grade again on the same cases")
    g.add_argument("--timeout", type=cli.positive_int, default=300,
                   help="seconds a submission may take to run its cells, and again for each exercise (default 300)")
    g.add_argument("--memory", type=cli.positive_int, default=4096, metavar="MB",
                   help="memory a submission may use (default 4096 MB)")
    g.add_argument("--overwrite", action="store_true", help="replace --csv / --json files that exist")
    args = p.parse_args(argv)
    try:
        import IPython  # noqa: F401  (grade reads notebooks' IPython syntax with it)
        import nbclient  # noqa: F401  (run needs it; checked here, before any work)
        import nbformat
    except ImportError:
        sys.exit("lessons: needs nbformat, nbclient and IPython: pip install -e .[lessons] "
                 "(or -r requirements.txt)")
    cli.run_main("lessons", lambda: _lessons(args, nbformat))


def _grade(args):
    missing = [p for p in args.notebooks if not os.path.isfile(p)]
    if missing:
        raise cli.Misuse(f"{missing[0]}: no such notebook")
    cli.check_outputs([args.csv, args.json], args.notebooks, args.overwrite)
    why = sandbox.available()
    if why:
        sys.exit(f"lessons: {why}; nothing graded")
    seed = args.seed if args.seed is not None else secrets.randbelow(10 ** 9)
    course = grading.course_exercises()
    results, graded = [], 0
    for path in args.notebooks:
        found = grading.grade(path, seed, course, args.timeout, args.memory)
        if not found:
            print(f"{path}: a lesson without exercises, skipped")
            continue
        graded += 1
        for r in found:
            print(f"{r.student:<16} {r.notebook:<34} {r.exercise:>5}  {'pass' if r.passed else 'FAIL'}  {r.message}")
        print(f"{found[0].student}: {sum(r.passed for r in found)} of {len(found)} passed in {path}\n")
        results += found
    if not results:
        with_exercises = ", ".join(name[:2].lstrip("0") for name, numbers in course.items() if numbers)
        raise cli.Misuse(f"none of the notebooks is a lesson with exercises (lessons {with_exercises})")
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results)} exercises passed in {graded} notebooks "
          f"(cases from seed {seed}: --seed {seed} grades on the same cases again)")
    rows = [dict(dataclasses.asdict(r), seed=seed) for r in results]
    if args.csv:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text(args.csv, text.getvalue())
    if args.json:
        write_text(args.json, strict_json(rows, indent=2) + "\n")
    return 0 if passed == len(results) else 1


def _lessons(args, nbformat):
    if args.command == "grade":
        sys.exit(_grade(args))
    paths = lesson_paths()
    if not paths:
        sys.exit(f"lessons: no notebooks found in {LESSONS_DIR} (the course lives in a clone of "
                 f"the repository: pip install -e . there)")
    if args.command == "student":
        cli.writable_folder(args.outdir)
        existing = [os.path.basename(p) for p in paths
                    if os.path.exists(os.path.join(args.outdir, os.path.basename(p)))]
        if existing:  # a student's answers are never overwritten
            raise cli.Misuse(f"{args.outdir} already holds {', '.join(existing)}: nothing written; "
                             f"choose an empty folder")
        os.makedirs(args.outdir, exist_ok=True)
        for path in paths:
            target = os.path.join(args.outdir, os.path.basename(path))
            write_atomic(student_copy(nbformat.read(path, as_version=4), args.instructor), target)
            print(f"wrote {target}")
    else:
        unknown = [n for n in args.names if not any(n in os.path.basename(p) for p in paths)]
        if unknown:
            raise cli.Misuse(f"no lesson's file name contains {unknown[0]!r} (the lessons: "
                             f"{', '.join(os.path.basename(p)[:2] for p in paths)})")
        chosen = [p for p in paths if not args.names or any(n in os.path.basename(p) for n in args.names)]
        targets = [os.path.join(args.out, os.path.basename(p)) if args.out else p for p in chosen]
        if args.out:
            cli.writable_folder(args.out)
            os.makedirs(args.out, exist_ok=True)
            cli.check_outputs(targets, paths, args.overwrite)
        for path, target in zip(chosen, targets):
            print(f"running {os.path.basename(path)} ...", end=" ", flush=True)
            started = time.perf_counter()
            nb = execute(nbformat.read(path, as_version=4), LESSONS_DIR)
            write_atomic(nb, target)
            print(f"{time.perf_counter() - started:.0f} s -> {target}", flush=True)


if __name__ == "__main__":
    main()
