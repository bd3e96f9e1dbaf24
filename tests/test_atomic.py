"""The one atomic writer: all of a file or none of it, and never a temporary file left behind."""

import json

import pytest
import torch

from ssmri.atomic import atomic_write, write_json, write_text


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_the_previous_file_and_no_temporary(tmp_path, error):
    path = write_text(tmp_path / "metrics.json", "the previous, complete file\n")
    with pytest.raises(type(error)):
        with atomic_write(path) as temporary:
            temporary.write_text("half of the new")
            raise error
    assert path.read_text() == "the previous, complete file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failing_first_write_leaves_nothing(tmp_path):
    with pytest.raises(OSError, match="disk full"):
        with atomic_write(tmp_path / "new" / "results.md") as temporary:
            temporary.write_text("half of the new")
            raise OSError("disk full")
    assert [p.name for p in tmp_path.rglob("*")] == ["new"]


def test_a_failing_rename_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = write_text(tmp_path / "results.md", "old\n")

    def no_rename(source, target):
        raise PermissionError("read-only folder")

    monkeypatch.setattr("ssmri.atomic.os.replace", no_rename)
    with pytest.raises(PermissionError):
        write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_each_form_writes_the_complete_file_and_only_it(tmp_path):
    write_text(tmp_path / "a" / "results.md", "| table |\n")  # the folder is created
    write_json(tmp_path / "metrics.json", {"test/psnr": 31.5, "loss": "ei"})
    samples = {"x": torch.arange(6.0).reshape(2, 3)}
    with atomic_write(tmp_path / "samples.pt") as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".samples.pt.")
        torch.save(samples, temporary)
    assert (tmp_path / "a" / "results.md").read_text() == "| table |\n"
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"loss": "ei", "test/psnr": 31.5}
    assert torch.equal(torch.load(tmp_path / "samples.pt")["x"], samples["x"])
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "metrics.json", "results.md", "samples.pt"]


def test_the_written_file_has_the_permissions_of_a_plain_write(tmp_path):
    (tmp_path / "plain.txt").write_text("x")
    write_text(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode
