"""``--source NAME=PATH``: the original archive, the extracted archive, or class folders."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from source_archives import Archive, pinned

from msrgb_bench.errors import ChecksumMismatchError, SourceLayoutError
from msrgb_bench.pipelines.sources import create_source
from msrgb_bench.pipelines.sources.eurosat import EuroSATMS, EuroSATRGB


def sha256sum_listing_digest(root: Path) -> str:
    """What ``sha256sum`` over every file (sorted relative paths), piped to sha256sum, prints."""
    lines = []
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{digest}  {path.relative_to(root).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_the_original_archive_is_verified_and_extracted(
    archives: dict[str, Archive], tmp_path: Path
) -> None:
    archive = archives["eurosat-ms"]
    source = create_source(
        "eurosat-ms",
        path=archive.path,
        cache_dir=tmp_path,
        files=pinned(EuroSATMS, archive),
        options={"progress": False},
    )
    root = source.prepare()
    expected_folder = (
        tmp_path / "extracted" / "eurosat-ms" / f"EuroSATallBands-{archive.sha256[:16]}"
    )
    assert root == expected_folder / EuroSATMS.archive_root
    assert source.used_files == {"EuroSATallBands.zip": archive.sha256}
    assert len(source.items(root)) == 200


def test_an_archive_with_another_checksum_is_refused(
    archives: dict[str, Archive], tmp_path: Path
) -> None:
    archive = archives["eurosat-ms"]
    # The release's own pin (md5 5ac12b3b...) does not match the sample archive.
    source = create_source("eurosat-ms", path=archive.path, cache_dir=tmp_path)
    with pytest.raises(ChecksumMismatchError) as err:
        source.prepare()
    message = str(err.value)
    assert str(archive.path) in message
    assert "EuroSATallBands.zip md5:5ac12b3b2557aa56e1826e981e8e200e" in message
    assert f"md5:{archive.md5}" in message and f"sha256:{archive.sha256}" in message
    assert not (tmp_path / "extracted").exists()


def test_the_extracted_archive_is_searched_for_the_class_folders(
    archives: dict[str, Archive], tmp_path: Path
) -> None:
    extracted = tmp_path / "my-download"
    with zipfile.ZipFile(archives["eurosat-ms"].path) as zf:
        zf.extractall(extracted)
    source = create_source("eurosat-ms", path=extracted, cache_dir=tmp_path / "cache")
    root = source.prepare()
    assert root == extracted / EuroSATMS.archive_root
    assert source.used_files == {"my-download/": sha256sum_listing_digest(root)}
    assert len(source.items(root)) == 200
    assert not (tmp_path / "cache").exists()  # nothing copied or extracted

    # Found too when the layout sits deeper than the known archive root.
    deeper = create_source("eurosat-ms", path=tmp_path, cache_dir=tmp_path / "cache")
    assert deeper.prepare() == root


def test_a_plain_folder_of_class_folders_is_used_in_place(sample: Path, tmp_path: Path) -> None:
    source = create_source("eurosat-ms", path=sample / "eurosat_ms", cache_dir=tmp_path)
    root = source.prepare()
    assert root == (sample / "eurosat_ms").resolve()
    items = source.items(root)
    assert len(items) == 200
    assert all(item.path.parent.parent == root for item in items)
    assert source.used_files == {"eurosat_ms/": sha256sum_listing_digest(root)}


def test_a_folder_of_the_wrong_data_is_refused(sample: Path, tmp_path: Path) -> None:
    source = EuroSATRGB(path=sample / "eurosat_ms", cache_dir=tmp_path)
    with pytest.raises(SourceLayoutError, match=r"eurosat_ms: no EuroSAT RGB .*\.jpg"):
        source.prepare()


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceLayoutError, match="does not exist"):
        EuroSATMS(path=tmp_path / "nowhere.zip", cache_dir=tmp_path).prepare()


def test_foreign_files_in_a_class_folder_are_skipped_with_a_warning(
    sample: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One third-party copy has Bombay_*.tif files inside SeaLake/ (public_sources.md).
    for real in sorted((sample / "eurosat_ms" / "SeaLake").glob("*.tif"))[:3]:
        (tmp_path / "SeaLake").mkdir(exist_ok=True)
        (tmp_path / "SeaLake" / real.name).write_bytes(real.read_bytes())
    (tmp_path / "SeaLake" / "Bombay_12.tif").write_bytes(real.read_bytes())
    source = EuroSATMS(path=tmp_path, cache_dir=tmp_path / "cache")
    items = source.items(source.prepare())
    assert [item.class_name for item in items] == ["SeaLake"] * 3
    assert "skipped 1 file(s)" in caplog.text and "Bombay_12.tif" in caplog.text
