"""Safe, all-or-nothing archive extraction."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from msrgb_bench.errors import CorruptArchiveError, UnsafeArchiveError
from msrgb_bench.pipelines.fetch import archive_stem, extract_archive

CONTENT = {
    "pack/a.txt": b"alpha\n",
    "pack/sub/b.bin": bytes(range(256)) * 40,
    "pack/sub/deeper/c.txt": b"gamma\n",
}


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def add_link(path: Path, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Path:
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("pack/a.txt")
        info.size = 6
        tf.addfile(info, io.BytesIO(b"alpha\n"))
        link = tarfile.TarInfo(name)
        link.type = kind
        link.linkname = target
        tf.addfile(link)
    return path


def extracted_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        ("pack.zip", lambda p: write_zip(p, CONTENT)),
        ("pack.tar", lambda p: write_tar(p, CONTENT)),
        ("pack.tar.gz", lambda p: write_tar(p, CONTENT, "w:gz")),
        ("pack.tar.bz2", lambda p: write_tar(p, CONTENT, "w:bz2")),
    ],
)
def test_every_archive_format_extracts_byte_for_byte(tmp_path: Path, name: str, writer) -> None:
    archive = writer(tmp_path / name)
    target = tmp_path / "out" / archive_stem(name)
    assert extract_archive(archive, target, progress=False) == target
    assert extracted_files(target) == CONTENT
    assert archive_stem(name) == "pack"
    assert [p.name for p in target.parent.iterdir()] == ["pack"]  # no staging folder left


def _zip_symlink(path: Path, name: str, target: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 << 16) | 0  # a symbolic link, as unzip stores it
        zf.writestr(info, target)
    return path


UNSAFE = [
    ("evil.zip", lambda p: write_zip(p, {"pack/ok.txt": b"x", "../evil.txt": b"x"}), "../evil.txt"),
    ("evil.zip", lambda p: write_zip(p, {"/tmp/evil.txt": b"x"}), "/tmp/evil.txt"),
    ("evil.zip", lambda p: write_zip(p, {"pack/../../evil.txt": b"x"}), "pack/../../evil.txt"),
    ("evil.zip", lambda p: _zip_symlink(p, "pack/link", "../../etc"), "pack/link"),
    ("evil.tar", lambda p: write_tar(p, {"pack/../../evil.txt": b"x"}), "pack/../../evil.txt"),
    ("evil.tar", lambda p: write_tar(p, {"/etc/evil.txt": b"x"}), "/etc/evil.txt"),
    ("evil.tar", lambda p: add_link(p, "pack/link", "../../outside"), "pack/link"),
    ("evil.tar", lambda p: add_link(p, "pack/link", "/etc/passwd"), "pack/link"),
    ("evil.tar", lambda p: add_link(p, "pack/hard", "../x", tarfile.LNKTYPE), "pack/hard"),
]


@pytest.mark.parametrize(("name", "writer", "entry"), UNSAFE)
def test_an_entry_escaping_the_target_is_refused_and_nothing_is_written(
    tmp_path: Path, name: str, writer, entry: str
) -> None:
    archive = writer(tmp_path / name)
    target = tmp_path / "deep" / "out" / "pack"
    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, target, progress=False)
    message = str(err.value)
    assert str(archive) in message
    assert repr(entry) in message
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # the staging folder is gone
    assert not (tmp_path / "deep" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_a_symlink_chain_out_of_the_target_is_refused_by_the_data_filter(tmp_path: Path) -> None:
    # Each link and name looks harmless on its own (no '..' outside, no absolute path), but on
    # disk pack/up == pack, so pack/up2 == the target's root and pack/up3 == its parent.
    archive = tmp_path / "chain.tar"
    with tarfile.open(archive, "w") as tf:
        for name, link in (("pack/up", "."), ("pack/up2", "up/.."), ("pack/up3", "up2/..")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tf.addfile(info)
        info = tarfile.TarInfo("pack/up3/evil.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    target = tmp_path / "out" / "chain"
    with pytest.raises(UnsafeArchiveError, match=r"chain\.tar.*'pack/up3.*refused"):
        extract_archive(archive, target, progress=False)
    assert not target.exists()
    assert not (tmp_path / "out" / "evil.txt").exists()


def test_a_rerun_after_a_killed_extraction_redoes_it_cleanly(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "pack.zip", CONTENT)
    target = tmp_path / "out" / "pack"
    # What a killed run leaves: a half-filled staging folder, and no target.
    stale = tmp_path / "out" / ".pack.abc123.partial"
    (stale / "pack").mkdir(parents=True)
    (stale / "pack" / "a.txt").write_bytes(b"al")
    extract_archive(archive, target, progress=False)
    assert extracted_files(target) == CONTENT
    assert sorted(p.name for p in target.parent.iterdir()) == ["pack"]


def test_a_finished_extraction_is_reused(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "pack.zip", CONTENT)
    target = tmp_path / "out" / "pack"
    extract_archive(archive, target, progress=False)
    marker = target / "marker"
    marker.write_text("kept")
    archive.unlink()  # not needed any more: the finished folder is returned as is
    assert extract_archive(archive, target, progress=False) == target
    assert marker.read_text() == "kept"


@pytest.mark.parametrize("name", ["pack.zip", "pack.tar.gz"])
def test_a_corrupt_archive_is_a_clear_error_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    good = tmp_path / f"good-{name}"
    if name.endswith(".zip"):
        write_zip(good, CONTENT)
    else:
        write_tar(good, CONTENT, "w:gz")
    data = good.read_bytes()
    if name.endswith(".zip"):
        # Flip bytes inside the first member's compressed data: its CRC check fails.
        offset = data.index(b"pack/a.txt") + len(b"pack/a.txt") + 2
        bad = (
            data[:offset] + bytes(b ^ 0xFF for b in data[offset : offset + 4]) + data[offset + 4 :]
        )
    else:
        bad = data[: len(data) // 2]  # truncated download
    archive = tmp_path / name
    archive.write_bytes(bad)
    target = tmp_path / "out" / "pack"
    with pytest.raises(CorruptArchiveError, match=name.replace(".", r"\.")):
        extract_archive(archive, target, progress=False)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_file_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "notes.zip"
    archive.write_text("not an archive")
    with pytest.raises(CorruptArchiveError, match="not a zip or tar archive"):
        extract_archive(archive, tmp_path / "out" / "notes", progress=False)
