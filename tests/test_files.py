import os
import stat

import pytest

from tinysegnet import files


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "scores.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(target)) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["scores.json"]
    files.write_text(str(target), "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["scores.json"]


def test_temporary_keeps_the_extension_and_the_result_the_umask(tmp_path):
    with files.atomic_path(str(tmp_path / "picture.png")) as tmp:
        assert tmp.endswith(".png") and os.path.dirname(tmp) == str(tmp_path)
        open(tmp, "wb").close()
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "picture.png").st_mode) == 0o666 & ~mask


def test_atomic_folder(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_folder(str(tmp_path / "set")) as tmp:
            open(os.path.join(tmp, "a.txt"), "w").close()
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with files.atomic_folder(str(tmp_path / "set")) as tmp:
        open(os.path.join(tmp, "a.txt"), "w").close()
    assert os.listdir(tmp_path / "set") == ["a.txt"]


def test_a_folder_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    from tinysegnet import files

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr(files.tempfile, "mkdtemp", refused)
    with pytest.raises(files.WriteFailed, match="cannot write .*synthetic: Permission denied"):
        with files.atomic_folder(str(tmp_path / "synthetic")):
            pass
    assert os.listdir(tmp_path) == []
