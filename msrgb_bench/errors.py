"""Error classes shared by the whole toolkit.

Every error that concerns a file names that file and says what is wrong with it, so that the
message alone tells a user what to fix.
"""

from __future__ import annotations

from pathlib import Path


class MSRGBError(Exception):
    """Base class of every error raised on purpose by msrgb-bench."""


class FileProblemError(MSRGBError):
    """A file (or folder) exists but cannot be used.

    Args:
        path: The offending file.
        problem: What is wrong with it, as a short sentence.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type[FileProblemError], tuple[Path, str]]:
        # Keeps the error picklable, so it crosses process-pool boundaries intact.
        return (type(self), (self.path, self.problem))


class CorruptRasterError(FileProblemError):
    """A raster is truncated, unreadable, has the wrong shape, dtype or only nodata."""


class ChecksumMismatchError(FileProblemError):
    """A file's checksum differs from the one pinned for it."""


class UnsafeArchiveError(FileProblemError):
    """An archive member would be written outside the extraction folder."""


class CorruptArchiveError(FileProblemError):
    """An archive cannot be read (truncated, bad member checksum, unknown format)."""


class DownloadError(FileProblemError):
    """A file could not be downloaded (no connection, server error, or no public download)."""


class UploadError(FileProblemError):
    """A dataset folder could not be uploaded (no connection, refused by the server, no access)."""


class SourceLayoutError(FileProblemError):
    """A path given for a source does not hold that source's files in a known layout."""


class UnknownClassError(FileProblemError):
    """A source class name is not covered by the recipe's class map."""


class RecipeError(FileProblemError):
    """A recipe file is malformed: unknown key, missing key or bad value."""


class ManifestError(FileProblemError):
    """A dataset's manifest or ``dataset.json`` is missing, malformed or contradicts its files."""


class RunFolderError(FileProblemError):
    """A training run folder or checkpoint is missing, malformed, unfinished or does not fit."""


class ProtocolError(FileProblemError):
    """A benchmark protocol file is malformed: unknown key, missing key or bad value."""


class ResultsFolderError(FileProblemError):
    """A benchmark results folder is malformed or was made with another protocol or dataset."""


class UnknownNameError(MSRGBError, KeyError):
    """A name looked up in a registry does not exist.

    Args:
        kind: What was looked up (``"model"``, ``"source"``, ...).
        name: The unknown name.
        known: The names that do exist.
    """

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known) or '(none)'}")

    def __str__(self) -> str:
        return str(self.args[0])
