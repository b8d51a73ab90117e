"""`lessons grade` as a cheating or careless student would meet it: every verdict comes from
the grader's own comparison, and no submission changes a file outside its own folder."""

import hashlib
import os
import subprocess
import sys
import textwrap
import time

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("IPython")

from tinysegnet.course import LESSONS_DIR, checks, sandbox  # noqa: E402

pytestmark = pytest.mark.skipif(sandbox.available() is not None, reason=str(sandbox.available()))

CONV = "02_convolution.ipynb"
WRONG_CONV = ("def conv_forward(x, w, b):\n    import numpy as np\n"
              "    return np.zeros((x.shape[0], w.shape[0]) + x.shape[2:])\n")


def _lesson(name):
    return nbformat.read(os.path.join(LESSONS_DIR, name), as_version=4)


def submission(folder, student, lesson=CONV, solutions=None, before=None, after=None, check_edit=None):
    """Write ``folder/student/lesson``: the course's notebook with ``solutions`` ({exercise:
    source}) replacing solution cells, cells ``before`` the first and ``after`` the last."""
    nb = _lesson(lesson)
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            if solutions and cell.metadata["exercise"] in solutions:
                cell.source = solutions[cell.metadata["exercise"]]
        if check_edit and "check" in cell.metadata.get("tags", []):
            cell.source = check_edit(cell.source)
    for source in reversed(before or []):
        nb.cells.insert(0, nbformat.v4.new_code_cell(textwrap.dedent(source)))
    for source in after or []:
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(source)))
    path = os.path.join(folder, student, lesson)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nbformat.write(nb, path)
    return path


def grade(*paths, timeout=60, extra=()):
    return subprocess.run([sys.executable, "-m", "tinysegnet.lessons", "grade", *paths, "--seed", "7",
                           "--timeout", str(timeout), *extra], capture_output=True, text=True, timeout=600)


def verdicts(output):
    """{(student, exercise): 'pass' | 'FAIL'} from grade's lines."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3] in ("pass", "FAIL"):
            found[(parts[0], parts[2])] = parts[3]
    return found


def _snapshot(*roots):
    found = {}
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    found[path] = hashlib.sha256(f.read()).hexdigest()
    return found


ATTACKS = {  # name: (cells before, cells after, a wrong 2.1 answer?)
    "patches the checks' comparison": (["from tinysegnet.course import checks\n"
                                        "checks._compare = lambda *a, **k: None"], [], True),
    "calls the library": (["from tinysegnet import functional as F"], [], False),
    "restores the library through gc": (["import gc\nfns = [o for o in gc.get_objects() if "
                                         "getattr(o, '__name__', '') == 'conv2d_forward']"], [], True),
    "reads the course's solutions": ([f"import json\nnb = json.load(open({os.path.join(LESSONS_DIR, CONV)!r}))\n"
                                      "exec(''.join(nb['cells'][3]['source']))"], [], True),
    "reads tinysegnet's source": ([f"exec(open({os.path.join(os.path.dirname(checks.__file__), '..', 'functional', 'conv.py')!r}).read())"],  # noqa: E501
                                  [], True),
    "prints fake passes": ([], ["print('exercise 2.1 passed (4 cases)')"], True),
    "sets IPython's custom exception hook": (["get_ipython().set_custom_exc((Exception,), lambda *a: print('passed'))"],
                                             [], True),
    "adds an input transformer": (["get_ipython().input_transformers_cleanup.append(lambda l: ['pass'])"], [], True),
    "exits the process": ([], ["import os\nos._exit(0)"], False),
    "loops for ever": ([], ["while True:\n    pass"], False),
    "forks a detached sleep": (["import os\nif os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(1000)"],  # noqa: E501
                               [], False),
    "runs a program": (["import subprocess\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)"], [], False),
    "kills the grader": (["import os\nos.kill(os.getppid(), 9)"], [], False),
    "writes a forged reply": (["import os, sys, struct, json\nh = json.dumps({'replies': []}).encode()\n"
                               "os.write(int(sys.argv[1]), struct.pack('<IQ', len(h), 0) + h)"], [], True),
    "uses all memory": (["import numpy as np\nhog = np.ones(1 << 40)"], [], False),
    "connects to the network": (["import socket\nsocket.create_connection(('127.0.0.1', 22), 1)"], [], False),
    "deletes a classmate's submission": (["import os\nos.remove({classmate!r})"], [], False),
    "rewrites the installed checks": (["open({checks!r}, 'a').write('\\n_compare = None\\n')"], [], False),
}
# answers of 2.1 that lean on what grading takes away: each must fail
SHORTCUTS = {
    "the library's convolution": "from tinysegnet import functional as F\n"
                                 "def conv_forward(x, w, b):\n    return F.conv2d_forward(x, w, b)[0]\n",
    "scipy.signal.correlate": "import numpy as np\nfrom scipy import signal\n"
                              "def conv_forward(x, w, b):\n    return np.stack([signal.correlate(x[n], w[f], 'same')[0]"
                              " + b[f] for n in range(len(x)) for f in range(len(w))])\n",
    "torch's conv2d": "import torch\n"
                      "def conv_forward(x, w, b):\n    return torch.nn.functional.conv2d(torch.tensor(x), "
                      "torch.tensor(w), torch.tensor(b), padding=w.shape[2] // 2).numpy()\n",
    "the expected answer from the checker's frame": "import inspect\n"
                                                    "def conv_forward(x, w, b):\n"
                                                    "    return inspect.currentframe().f_back.f_locals['expected']\n",
}


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    """A class of submissions: a right one (bob), one per attack, and a broken file."""
    root = tmp_path_factory.mktemp("class")
    bob = submission(root, "bob")
    attacks = {}
    places = {"{classmate!r}": repr(bob), "{checks!r}": repr(checks.__file__)}

    def placed(cell):
        for mark, value in places.items():
            cell = cell.replace(mark, value)
        return cell
    for i, (name, (before, after, wrong)) in enumerate(ATTACKS.items()):
        student = f"s{i:02d}"
        attacks[name] = (student, submission(root, student, before=[placed(c) for c in before],
                                             after=after, solutions={"2.1": WRONG_CONV} if wrong else None))
    for i, (name, answer) in enumerate(SHORTCUTS.items()):
        student = f"t{i:02d}"
        attacks[name] = (student, submission(root, student, solutions={"2.1": answer}))
    broken = os.path.join(root, "zed", CONV)
    os.makedirs(os.path.dirname(broken))
    with open(bob) as f, open(broken, "w") as g:
        g.write(f.read()[:500])  # truncated
    paths = [bob] + [p for _, p in attacks.values()] + [broken]
    before = _snapshot(str(root), os.path.dirname(checks.__file__), LESSONS_DIR)
    started = time.perf_counter()
    result = grade(*paths, timeout=8, extra=("--memory", "2048"))
    seconds = time.perf_counter() - started
    after = _snapshot(str(root), os.path.dirname(checks.__file__), LESSONS_DIR)
    return dict(result=result, attacks=attacks, before=before, after=after, seconds=seconds)


def test_the_class_is_graded_and_exits_1(class_folder):
    result = class_folder["result"]
    assert result.returncode == 1, result.stderr
    assert verdicts(result.stdout)[("bob", "2.1")] == "pass"
    assert verdicts(result.stdout)[("zed", "-")] == "FAIL"
    assert "not a notebook" in result.stdout


@pytest.mark.parametrize("shortcut", sorted(SHORTCUTS))
def test_a_shortcut_fails(class_folder, shortcut):
    student, _ = class_folder["attacks"][shortcut]
    found = verdicts(class_folder["result"].stdout)
    assert (found[(student, "2.1")], found[(student, "2.2")]) == ("FAIL", "pass"), class_folder["result"].stdout


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_gains_nothing(class_folder, attack):
    """A wrong 2.1 behind an attack still fails it; an attack that ends the process fails
    everything; any other attack only fails its own cell, and the right answers pass."""
    student, _ = class_folder["attacks"][attack]
    found = verdicts(class_folder["result"].stdout)
    if attack == "writes a forged reply":  # taken for the worker's first message, or garbling
        assert found[(student, "2.1")] == "FAIL"  # the rest: either way, the wrong 2.1 fails
        return
    if attack in ("exits the process", "loops for ever"):
        expected = {"2.1": "FAIL", "2.2": "FAIL", "2.3": "FAIL"}
    else:
        expected = {"2.1": "FAIL" if ATTACKS[attack][2] else "pass", "2.2": "pass", "2.3": "pass"}
    assert {e: found[(student, e)] for e in expected} == expected, class_folder["result"].stdout


def test_no_file_outside_a_submission_changes(class_folder):
    assert class_folder["after"] == class_folder["before"]


def test_no_process_outlives_grading(class_folder):
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 1000" not in ps
    assert not [line for line in ps.splitlines() if "course/worker.py" in line]


def test_a_class_is_graded_in_bounded_time(class_folder):
    assert class_folder["seconds"] < 120  # 24 submissions, two of them held to their 8 s timeout


def test_an_edited_check_cell_changes_nothing(tmp_path):
    spaced = submission(tmp_path, "amy", check_edit=lambda s: s + " ")
    deleted = submission(tmp_path, "ben", check_edit=lambda s: "")
    found = verdicts(grade(spaced, deleted).stdout)
    assert all(found[(s, e)] == "pass" for s in ("amy", "ben") for e in ("2.1", "2.2", "2.3"))


def test_a_check_never_run_in_the_sandbox_cannot_be_faked_by_outputs(tmp_path):
    path = submission(tmp_path, "cat", solutions={"2.1": WRONG_CONV})
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "check" in cell.metadata.get("tags", []):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="exercise 2.1 passed\n")]
            cell.execution_count = 1
    nbformat.write(nb, path)
    assert verdicts(grade(path).stdout)[("cat", "2.1")] == "FAIL"


def test_the_seed_changes_the_cases(tmp_path):
    cases = [checks.EXERCISES["2.1"].cases(__import__("numpy").random.default_rng(s)) for s in (1, 2)]
    assert (cases[0][0].args[0] != cases[1][0].args[0]).any()


def test_outputs_never_land_on_inputs(tmp_path):
    path = submission(tmp_path, "dan")
    before = open(path).read()
    for flags in (["--csv", path], ["--json", path], ["--csv", str(tmp_path / "g.csv"), "--json",
                                                       str(tmp_path / "g.csv")]):
        result = grade(path, extra=flags)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert open(path).read() == before
    (tmp_path / "old.csv").write_text("kept")
    assert grade(path, extra=["--csv", str(tmp_path / "old.csv")]).returncode == 2
    assert (tmp_path / "old.csv").read_text() == "kept"
    assert grade(path, extra=["--csv", str(tmp_path / "old.csv"), "--overwrite"]).returncode == 0
    assert "seed" in (tmp_path / "old.csv").read_text().splitlines()[0]


def test_the_grader_fails_an_answer_that_writes_into_its_input_or_reuses_a_buffer(tmp_path):
    writes = ("def conv_forward(x, w, b):\n    out = _right(x, w, b)\n    x[...] = 0\n    return out\n")
    reuses = ("_buffer = {}\ndef conv_forward(x, w, b):\n    out = _right(x, w, b)\n"
              "    keep = _buffer.setdefault(out.shape, out.copy())\n    keep[...] = out\n    return keep\n")
    right = ("import numpy as np\ndef _right(x, w, b):\n    k = w.shape[2]; p = k // 2\n"
             "    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))\n"
             "    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))\n"
             "    return np.einsum('nchwuv,fcuv->nfhw', win, w) + b[None, :, None, None]\n")
    paths = [submission(tmp_path, "wes", solutions={"2.1": right + writes}),
             submission(tmp_path, "rey", solutions={"2.1": right + reuses}),
             submission(tmp_path, "sam", solutions={"2.1": right + "conv_forward = _right\n"})]
    out = grade(*paths).stdout
    assert verdicts(out)[("wes", "2.1")] == "FAIL" and "wrote into its input x" in out
    assert verdicts(out)[("rey", "2.1")] == "FAIL" and "called again: return a new array" in out
    assert verdicts(out)[("sam", "2.1")] == "pass"  # sliding_window_view with einsum is fair NumPy
