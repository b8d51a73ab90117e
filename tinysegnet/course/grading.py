"""Grading submitted lesson notebooks, each in isolation, with verdicts the submission cannot
forge.

For every submission: the notebook is read (never written to), its code cells but the check
cells are turned from IPython's syntax into Python, and they run in a sandboxed worker
(:mod:`tinysegnet.course.sandbox`) in a new empty folder of its own. The grader then calls
the student's functions there by name, on cases drawn from the instructor's seed, and
compares what comes back here with tinysegnet's own results (:mod:`tinysegnet.course.checks`).
No output, check cell or printed text of the submission counts: an edited or deleted check
cell changes nothing, a cell that prints "passed" passes nothing.
"""

import dataclasses
import inspect
import os
import re

import numpy as np

from .. import metrics
from . import checks, lesson_paths, sandbox
from .checks import ExerciseFailed


@dataclasses.dataclass
class Result:
    """One exercise of one submitted notebook."""
    student: str
    notebook: str
    exercise: str
    passed: bool
    message: str


class NotGradable(Exception):
    """A file that is not one of the course's notebooks: one FAIL line, the class goes on."""


def _tagged(nb, tag):
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])
            and "exercise" in c.metadata]


def course_exercises():
    """{lesson file name: [exercise numbers]} of the course's own notebooks, in order."""
    import nbformat
    found = {}
    for path in lesson_paths():
        numbers = [c.metadata["exercise"] for c in _tagged(nbformat.read(path, as_version=4), "check")]
        found[os.path.basename(path)] = numbers
    return found


def student_name(path):
    """The folder a submission sits in when it keeps its lesson's file name (``alice/02_...``),
    else the file name without the lesson's name (``alice_02_convolution.ipynb`` -> alice)."""
    name = os.path.basename(path)
    if re.fullmatch(r"\d\d_.+\.ipynb", name):
        return os.path.basename(os.path.dirname(os.path.abspath(path))) or name
    return re.sub(r"[_-]?\d\d_.+$", "", os.path.splitext(name)[0]) or os.path.splitext(name)[0]


def read(path):
    """The notebook at ``path``; NotGradable (one line) for anything else."""
    import nbformat
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:  # nbformat raises many types for a file that is not a notebook
        first = str(e).splitlines()[0][:120] if str(e) else ""
        raise NotGradable(f"not a notebook ({type(e).__name__}: {first})") from None


def identify(path, nb, course):
    """The course lesson ``nb`` is a copy of: by file name, else by the exercises it tags."""
    for lesson in course:
        if os.path.basename(path).endswith(lesson):
            return lesson
    tagged = {c.metadata.get("exercise") for c in nb.cells if c.cell_type == "code"}
    for lesson, numbers in course.items():
        if tagged & set(numbers):
            return lesson
    raise NotGradable("not one of the course's lessons")


def python_cells(nb):
    """The code of every code cell but the check cells, IPython's syntax (magics, ``!``)
    turned into calls the worker answers with nothing."""
    from IPython.core.inputtransformer2 import TransformerManager
    transform = TransformerManager().transform_cell
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "check" in cell.metadata.get("tags", []):
            continue
        try:
            cells.append(transform(cell.source))
        except Exception:  # IPython's own failure on text it cannot parse: the cell runs as it is
            cells.append(cell.source)
    return cells


def given_helpers():
    """{module: source} of what the statements hand out: ``tinysegnet.metrics.boundary``
    and ``dilate`` (lesson 8), nothing else of the library."""
    source = "import numpy as np\n\n" + "\n\n".join(
        inspect.getsource(f) for f in (metrics.boundary, metrics._disk_offsets, metrics.dilate))
    return {"tinysegnet.metrics": source}


class _Remote:
    """A student's layer function, called in the sandbox (the capstone's glue runs here)."""

    def __init__(self, box, name, parameters):
        self.box, self.name, self.parameters = box, name, parameters

    def __call__(self, *args):
        reply = self.box.call([(self.name, args)])[0]
        if reply.not_attempted:
            raise NotImplementedError(reply.error)
        if reply.error is not None:
            raise checks.LayerError(f"{self.name}(): {reply.error}")
        for j, (before, after) in enumerate(zip(args, reply.after)):
            if isinstance(before, np.ndarray) and not np.array_equal(before, after, equal_nan=True):
                raise checks.LayerError(f"your {self.name}() wrote into its input {self.parameters[j]}")
        return tuple(reply.value) if isinstance(reply.value, list) else reply.value


def _grade_exercise(box, number, seed):
    """The pass message, or ExerciseFailed / NotImplementedError."""
    rng = np.random.default_rng([seed] + [int(p) for p in number.split(".")])
    if number == "12.1":
        from .capstone import library_signatures
        remotes = {name: _Remote(box, name, params) for name, params in checks.CAPSTONE_LAYERS.items()}
        return checks.whole_model(library_signatures(**remotes), seed=rng)
    exercise = checks.EXERCISES[number]
    cases = checks.draw(exercise, rng)
    return checks.verify(exercise, cases, box.call(checks.requests(cases)))


def grade(path, seed, course, timeout=600, memory_mb=4096):
    """[Result] for every exercise of the lesson the notebook at ``path`` is (none for a
    lesson without exercises); one FAIL Result (exercise "-") for a file that cannot be graded."""
    student, name = student_name(path), os.path.basename(path)
    try:
        nb = read(path)
        lesson = identify(path, nb, course)
    except NotGradable as e:
        return [Result(student, name, "-", False, str(e))]
    numbers = course[lesson]
    if not numbers:
        return []
    try:
        box = sandbox.Sandbox(python_cells(nb), given_helpers(), timeout, memory_mb)
    except sandbox.SandboxError as e:
        return [Result(student, lesson, n, False, str(e)) for n in numbers]
    results = []
    with box:
        for i, number in enumerate(numbers):
            try:
                passed, message = True, _grade_exercise(box, number, seed)
            except ExerciseFailed as e:
                passed, message = False, _explained(str(e), box.cell_errors)
            except NotImplementedError:
                passed, message = False, "not attempted (the exercise still raises NotImplementedError)"
            except sandbox.SandboxError as e:  # the worker is gone: so is every exercise left
                results += [Result(student, lesson, n, False, str(e)) for n in numbers[i:]]
                break
            results.append(Result(student, lesson, number, passed, message))
    return results


def _explained(message, cell_errors):
    """A missing function's message with the first error the notebook's cells raised."""
    if "does not define a function" in message and cell_errors:
        return f"{message} ({cell_errors[0]})"
    return message
