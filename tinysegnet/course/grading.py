"""Grading submitted lesson notebooks: run each top to bottom (in memory: the submission is
never written to) and read every exercise's check cell.

A check cell is a code cell tagged ``check`` whose metadata names its ``exercise``. It passes
when it ran without an error; it fails with the error's message (the check's own one line,
e.g. "exercise 2.1, case 2 (x (1, 2, 6, 4), w (3, 2, 5, 5)): out[0, 1, 3, 2] is ...").
A check cell whose source differs from the course's, or that is missing, fails too: a
student cannot pass by editing the check.
"""

import dataclasses
import os
import re

from . import lesson_paths


@dataclasses.dataclass
class Result:
    """One exercise of one submitted notebook."""
    student: str
    notebook: str
    exercise: str
    passed: bool
    message: str


def _checks(nb):
    """{exercise: check cell} of a notebook, in order."""
    return {c.metadata["exercise"]: c for c in nb.cells
            if c.cell_type == "code" and "check" in c.metadata.get("tags", []) and "exercise" in c.metadata}


def course_checks():
    """{lesson file name: {exercise: check cell source}} of the course's own notebooks."""
    import nbformat
    return {os.path.basename(path): {e: c.source for e, c in _checks(nbformat.read(path, as_version=4)).items()}
            for path in lesson_paths()}


def student_name(path):
    """The folder a submission sits in when it keeps its lesson's file name (``alice/02_...``),
    else the file name without the lesson's name (``alice_02_convolution.ipynb`` -> alice)."""
    name = os.path.basename(path)
    if re.fullmatch(r"\d\d_.+\.ipynb", name):
        return os.path.basename(os.path.dirname(os.path.abspath(path))) or name
    return re.sub(r"[_-]?\d\d_.+$", "", os.path.splitext(name)[0]) or os.path.splitext(name)[0]


def _lesson_of(path, submitted, course):
    """The course lesson a submission is: by file name, else by the exercises it checks."""
    for lesson in course:
        if os.path.basename(path).endswith(lesson):
            return lesson
    for lesson, expected in course.items():
        if set(submitted) & set(expected):
            return lesson
    return None


def _error_line(output):
    if output.ename == "NotImplementedError":
        return "not attempted (the exercise still raises NotImplementedError)"
    return f"{output.ename}: {output.evalue}".splitlines()[0]


def identify(path, course=None):
    """The course lesson a notebook is a copy of, or None for a lesson without exercises.

    Raises ValueError (one line) for a file that is not a notebook, or not of this course."""
    import nbformat
    course = course_checks() if course is None else course
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # nbformat raises several types for a file that is not a notebook
        raise ValueError(f"{path}: not a notebook ({type(e).__name__}: {e})") from None
    lesson = _lesson_of(path, _checks(nb), course)
    if lesson is None:
        raise ValueError(f"{path}: not one of the course's lessons")
    return lesson if course[lesson] else None


def grade(path, timeout=600, course=None):
    """[Result] for every exercise of the course lesson that the notebook at ``path`` is
    (see :func:`identify`, which must name a lesson with exercises)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    course = course_checks() if course is None else course
    lesson = identify(path, course)
    if lesson is None:
        raise ValueError(f"{path}: its lesson has no exercises to grade")
    nb = nbformat.read(path, as_version=4)
    submitted = _checks(nb)
    expected = course[lesson]
    unfinished = None
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    except (CellTimeoutError, DeadKernelError) as e:
        unfinished = f"the notebook did not finish ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
    student, results = student_name(path), []
    for exercise, source in expected.items():
        cell = submitted.get(exercise)
        if cell is None:
            passed, message = False, "its check cell is missing"
        elif cell.source != source:
            passed, message = False, "its check cell was changed; restore it from the course"
        else:
            errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            if errors:
                passed, message = False, _error_line(errors[0])
            elif cell.get("execution_count") is None:
                passed, message = False, unfinished or "its check cell did not run"
            else:
                text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
                passed, message = True, text.strip().splitlines()[-1] if text.strip() else "passed"
        results.append(Result(student, lesson, exercise, passed, message))
    return results
