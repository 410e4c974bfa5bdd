import os

import pytest

from datasets.atomic_write import replace_atomically


def write_text(text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    return write


def test_the_target_is_replaced_whole_and_no_temporary_file_stays(tmp_path):
    target = tmp_path / "split.json"
    target.write_text("old")
    seen = []
    replace_atomically(str(target), lambda tmp: (seen.append(tmp), write_text("new")(tmp)))
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["split.json"]
    # the temporary file is beside the target (same file system: the rename is atomic) and not named by pid
    assert os.path.dirname(seen[0]) == str(tmp_path) and str(os.getpid()) not in os.path.basename(seen[0])


def test_a_failed_write_leaves_the_old_file_and_nothing_else(tmp_path):
    target = tmp_path / "split.json"
    target.write_text("old")

    def failing(tmp):
        write_text("half")(tmp)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(str(target), failing)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["split.json"]


def test_two_writers_of_one_target_get_different_temporary_files(tmp_path):
    names = []
    target = str(tmp_path / "cache.pkl")
    replace_atomically(target, lambda outer: (names.append(outer), replace_atomically(
        target, lambda inner: (names.append(inner), write_text("inner")(inner)))))
    assert len(set(names)) == 2
