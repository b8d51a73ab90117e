"""The lesson notebooks run top to bottom, and their student copies hide the solutions."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from tinysegnet import lessons  # noqa: E402

PATHS = lessons.lesson_paths()
WITH_EXERCISES = [p for p in PATHS if any(
    "solution" in c.metadata.get("tags", []) for c in nbformat.read(p, as_version=4).cells)]


# Per cell. A lesson's longest cell takes about a minute on an idle 2-core machine; this leaves
# room for a machine several times slower or busy with other work.
CELL_TIMEOUT = 900


def _errors(nb):
    return {i: o for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.outputs if o.output_type == "error"}


def test_the_course_is_complete():
    assert len(PATHS) == 9
    assert [os.path.basename(p)[:2] for p in PATHS] == [f"{i:02d}" for i in range(1, 10)]
    assert [os.path.basename(p)[:2] for p in WITH_EXERCISES] == ["02", "03", "04", "05"]
    readme = open(os.path.join(lessons.LESSONS_DIR, "README.md")).read()
    assert all(os.path.basename(p) in readme for p in PATHS)


def test_strip_solutions_keeps_indentation_and_the_rest():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    y = x * 2\n    ### END SOLUTION\n    return y\n"
    assert lessons.strip_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n"
        "    raise NotImplementedError(\"exercise: write this part\")\n    return y\n")


def test_student_command_writes_stubbed_copies(tmp_path):
    lessons.main(["student", str(tmp_path)])
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(p) for p in PATHS]
    for path in WITH_EXERCISES:
        student = nbformat.read(tmp_path / os.path.basename(path), as_version=4)
        solutions = [c for c in student.cells if "solution" in c.metadata.get("tags", [])]
        assert solutions and all("# YOUR CODE HERE" in c.source and "BEGIN SOLUTION" not in c.source
                                 for c in solutions)
        assert any("check" in c.metadata.get("tags", []) for c in student.cells)
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=os.path.basename)
def test_checks_fail_on_stubs_and_pass_with_solutions(path):
    nb = nbformat.read(path, as_version=4)
    checks = [i for i, c in enumerate(nb.cells) if "check" in c.metadata.get("tags", [])]
    student = lessons.execute(lessons.student_copy(nb), lessons.LESSONS_DIR, CELL_TIMEOUT, allow_errors=True)
    failed = _errors(student)
    assert all(i in failed for i in checks), f"checks that passed on a stub: {set(checks) - set(failed)}"
    assert all(failed[i].ename == "NotImplementedError" for i in checks)
    solved = lessons.execute(nb, lessons.LESSONS_DIR, CELL_TIMEOUT, allow_errors=True)
    assert not _errors(solved)  # the committed solutions pass every check


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in PATHS if p not in WITH_EXERCISES], ids=os.path.basename)
def test_notebook_runs_top_to_bottom(path):
    nb = lessons.execute(nbformat.read(path, as_version=4), lessons.LESSONS_DIR, CELL_TIMEOUT, allow_errors=True)
    assert not _errors(nb)
