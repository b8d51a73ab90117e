"""The lesson notebooks: ``python -m tinysegnet.lessons student OUTDIR`` and ``... run``.

``student OUTDIR`` writes a copy of every lesson for students: in each code cell tagged
``solution`` the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become a
``# YOUR CODE HERE`` stub that raises NotImplementedError; outputs are cleared. Cells
tagged ``check`` (the gradient checks) stay as they are, so they fail until the student
has written a correct answer.

``run`` executes every notebook in ``lessons/`` top to bottom and saves it with fresh
outputs, so the committed figures never go stale.
"""

import glob
import os
import re
import sys

from . import cli
from .files import atomic_path

LESSONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lessons")
SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*\n?",
                      re.M | re.S)
STUB = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError(\"exercise: write this part\")\n"


def lesson_paths(folder=LESSONS_DIR):
    return sorted(glob.glob(os.path.join(folder, "[0-9][0-9]_*.ipynb")))


def strip_solutions(source):
    """The cell source with every solution region replaced by the stub."""
    return SOLUTION.sub(lambda m: STUB.format(indent=m.group("indent")), source)


def student_copy(notebook):
    """A copy of ``notebook`` (an nbformat node) with solutions stubbed and outputs cleared."""
    import copy
    nb = copy.deepcopy(notebook)
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
    """Run a notebook in place (nbclient, the python3 kernel, working folder ``cwd``)."""
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": cwd}}).execute()
    return nb


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.lessons", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write student copies with the solutions removed")
    s.add_argument("outdir")
    r = sub.add_parser("run", help="re-execute the lessons and save their outputs")
    r.add_argument("names", nargs="*", help="only lessons whose file name contains one of these")
    args = p.parse_args(argv)
    try:
        import nbformat
        import nbclient  # noqa: F401  (run needs it; checked here, before any work)
    except ImportError:
        sys.exit("lessons: needs nbformat and nbclient: pip install -e .[lessons] (or -r requirements.txt)")
    cli.run_main("lessons", lambda: _lessons(args, nbformat))


def _lessons(args, nbformat):
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
            write_atomic(student_copy(nbformat.read(path, as_version=4)), target)
            print(f"wrote {target}")
    else:
        for path in paths:
            if args.names and not any(n in os.path.basename(path) for n in args.names):
                continue
            print(f"running {os.path.basename(path)} ...", flush=True)
            nb = execute(nbformat.read(path, as_version=4), LESSONS_DIR)
            write_atomic(nb, path)


if __name__ == "__main__":
    main()
