"""The lesson notebooks run top to bottom, and their student copies hide the solutions."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from tinysegnet import lessons  # noqa: E402
from tinysegnet.course import sandbox  # noqa: E402

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
    assert len(PATHS) == 13
    assert [os.path.basename(p)[:2] for p in PATHS] == [f"{i:02d}" for i in range(1, 14)]
    assert [os.path.basename(p)[:2] for p in WITH_EXERCISES] == ["02", "03", "04", "05", "08", "10", "11", "12",
                                                                 "13"]
    readme = open(os.path.join(lessons.LESSONS_DIR, "README.md")).read()
    assert all(os.path.basename(p) in readme for p in PATHS)


def test_every_exercise_has_a_solution_and_a_check_in_the_same_lesson():
    total = 0
    for path in WITH_EXERCISES:
        cells = nbformat.read(path, as_version=4).cells
        solved = {c.metadata.get("exercise") for c in cells if "solution" in c.metadata.get("tags", [])}
        checked = {c.metadata.get("exercise") for c in cells if "check" in c.metadata.get("tags", [])}
        assert solved == checked and None not in solved, path
        total += len(checked)
    assert total >= 15


def test_no_lesson_reads_files_relative_to_its_folder():
    """Student copies run from any folder: paths come from tinysegnet.course, not from '..'."""
    for path in PATHS:
        for cell in nbformat.read(path, as_version=4).cells:
            assert '"..", ' not in cell.source and "'../" not in cell.source and '"../' not in cell.source, path


def test_strip_solutions_keeps_indentation_and_the_rest():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    y = x * 2\n    ### END SOLUTION\n    return y\n"
    assert lessons.strip_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n"
        "    raise NotImplementedError(\"exercise: write this part\")\n    return y\n")


def test_student_command_refuses_to_overwrite(tmp_path, capsys):
    lessons.main(["student", str(tmp_path)])
    (tmp_path / os.path.basename(PATHS[1])).write_text("a student's answers")
    with pytest.raises(SystemExit) as e:
        lessons.main(["student", str(tmp_path)])
    assert e.value.code == 2 and "already holds" in capsys.readouterr().err
    assert (tmp_path / os.path.basename(PATHS[1])).read_text() == "a student's answers"


def _submission(folder, path, solved=True, change=None):
    """A submitted copy of lesson ``path`` in ``folder``: solved, or the student copy, with
    ``change(cells)`` applied."""
    nb = nbformat.read(path, as_version=4)
    nb = nb if solved else lessons.student_copy(nb)
    if change:
        change(nb.cells)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / os.path.basename(path)
    nbformat.write(nb, str(target))
    return str(target)


def _wrong_unpool(cells):
    cell = next(c for c in cells if c.metadata.get("exercise") == "4.3" and "solution" in c.metadata["tags"])
    cell.source = cell.source.replace("return out[:, :, :H, :W]", "return out")


def _edited_check(cells):
    cell = next(c for c in cells if c.metadata.get("exercise") == "4.4" and "check" in c.metadata["tags"])
    cell.source = "print('exercise 4.4 passed')"


NEEDS_SANDBOX = pytest.mark.skipif(sandbox.available() is not None, reason=str(sandbox.available()))


@pytest.mark.slow
@NEEDS_SANDBOX
def test_grade_reports_every_student_and_exercise(tmp_path, capsys):
    lesson = next(p for p in PATHS if os.path.basename(p).startswith("04"))
    alice = _submission(tmp_path / "alice", lesson, solved=False)
    bob = _submission(tmp_path / "bob", lesson)
    carol = _submission(tmp_path / "carol", lesson, change=lambda c: (_wrong_unpool(c), _edited_check(c)))
    before = open(carol).read()
    with pytest.raises(SystemExit) as e:
        lessons.main(["grade", alice, bob, carol, "--csv", str(tmp_path / "class.csv"),
                      "--json", str(tmp_path / "class.json")])
    assert e.value.code == 1
    out = capsys.readouterr().out
    # carol's edited check cell is not what grades her: her wrong unpooling alone fails
    assert "alice: 0 of 4 passed" in out and "bob: 4 of 4 passed" in out and "carol: 3 of 4 passed" in out
    assert "not attempted" in out
    assert "exercise 4.3, case 1 (values (2, 3, 3, 4) -> (5, 7)): out has shape (2, 3, 6, 8)" in out
    rows = (tmp_path / "class.csv").read_text().splitlines()
    assert rows[0] == "student,notebook,exercise,passed,message,seed" and len(rows) == 13
    import json
    assert len(json.loads((tmp_path / "class.json").read_text())) == 12
    assert open(carol).read() == before  # the submission itself is never written to

    with pytest.raises(SystemExit) as e:  # a whole folder: lessons without exercises are skipped
        lessons.main(["grade", bob, PATHS[0]])
    assert e.value.code == 0
    assert f"{PATHS[0]}: a lesson without exercises, skipped" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["grade", "{tmp}/missing.ipynb"], "missing.ipynb: no such notebook"),
    (["grade", "{lesson1}"], "none of the notebooks is a lesson with exercises"),
    (["grade", "{lesson1}", "--seed", "-1"], "--seed: must be 0 or more"),
])
def test_grade_misuse_is_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "notes.txt").write_text("not json")
    nbformat.write(nbformat.v4.new_notebook(), str(tmp_path / "other.ipynb"))
    argv = [a.format(tmp=tmp_path, lesson1=PATHS[0]) for a in argv]
    with pytest.raises(SystemExit) as e:
        lessons.main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and message in err and "\n" not in err


@NEEDS_SANDBOX
def test_a_file_that_is_no_lesson_is_one_fail_line_and_the_rest_is_graded(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not json")
    nbformat.write(nbformat.v4.new_notebook(), str(tmp_path / "other.ipynb"))
    bob = _submission(tmp_path / "bob", next(p for p in PATHS if os.path.basename(p).startswith("04")))
    with pytest.raises(SystemExit) as e:
        lessons.main(["grade", str(tmp_path / "notes.txt"), str(tmp_path / "other.ipynb"), bob])
    out = capsys.readouterr().out
    assert e.value.code == 1
    assert "notes.txt" in out and "FAIL  not a notebook" in out
    assert "FAIL  not one of the course's lessons" in out and "bob: 4 of 4 passed" in out


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
    copy = lessons.student_copy(nb)
    checks = [i for i, c in enumerate(copy.cells) if "check" in c.metadata.get("tags", [])]
    student = lessons.execute(copy, lessons.LESSONS_DIR, CELL_TIMEOUT, allow_errors=True)
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


def test_the_students_release_leaves_out_the_derivations_and_the_instructors_keeps_them(tmp_path):
    lessons.main(["student", str(tmp_path / "students")])
    lessons.main(["student", str(tmp_path / "instructor"), "--instructor"])
    for path in WITH_EXERCISES:
        name = os.path.basename(path)
        course = nbformat.read(path, as_version=4)
        derivations = [c.source for c in course.cells if "derivation" in c.metadata.get("tags", [])]
        students = [c.source for c in nbformat.read(tmp_path / "students" / name, as_version=4).cells]
        instructor = [c.source for c in nbformat.read(tmp_path / "instructor" / name, as_version=4).cells]
        assert not set(derivations) & set(students)
        assert set(derivations) <= set(instructor)
    assert any("derivation" in c.metadata.get("tags", []) for p in WITH_EXERCISES
               for c in nbformat.read(p, as_version=4).cells)


def test_a_stub_leaves_the_steps_the_hints_ask_for_to_the_student(tmp_path):
    lessons.main(["student", str(tmp_path)])
    nb = nbformat.read(tmp_path / "02_convolution.ipynb", as_version=4)
    stubs = "\n".join(c.source for c in nb.cells if "solution" in c.metadata.get("tags", []))
    assert "np.pad" not in stubs and "np.zeros" not in stubs


def test_run_refuses_an_unknown_lesson_and_never_writes_over_the_course_with_out(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        lessons.main(["run", "nope"])
    assert e.value.code == 2 and "no lesson's file name contains 'nope'" in capsys.readouterr().err
    (tmp_path / os.path.basename(PATHS[0])).write_text("mine")
    with pytest.raises(SystemExit) as e:
        lessons.main(["run", "01", "--out", str(tmp_path)])
    assert e.value.code == 2 and (tmp_path / os.path.basename(PATHS[0])).read_text() == "mine"
