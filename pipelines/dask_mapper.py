"""Run a build's per-chip work on a Dask distributed cluster.

For builds too large for one machine (BigEarthNet size), :func:`dask_chip_mapper` gives
:func:`~msrgb_bench.pipelines.build.build_dataset` a :data:`~msrgb_bench.pipelines.build.ChipMapper`
that sends the same per-chip function the local process pool runs to the workers of a Dask
scheduler, in batches, and hands the records back in task order. The build is therefore
byte-identical to a local one with the same inputs and seed, and a bad source file fails it with
the same :class:`~msrgb_bench.errors.FileProblemError` (the first one in task order).

Everything except the per-chip work (downloads, listing, splits, dedup, manifest) stays on the
machine that runs the build. The workers read the source files and write the chips into the
staging folder beside the output folder, so the download cache (or the ``--source`` folders) and
the output folder's parent must be on a filesystem every worker sees at the same path, and the
workers must run the same msrgb-bench install. Dask is an optional dependency:
``pip install "msrgb-bench[dask]"``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from msrgb_bench.errors import FileProblemError
from msrgb_bench.pipelines.build import ChipMapper, chunk_size
from msrgb_bench.pipelines.chips import ChipRecord
from msrgb_bench.pipelines.sources import Source, SourceItem

if TYPE_CHECKING:
    from types import ModuleType

Task = tuple[Source, SourceItem, int]
T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = 'pip install "msrgb-bench[dask]"'


def _distributed() -> ModuleType:
    """Import ``dask.distributed`` or say how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"building on a Dask cluster needs dask.distributed, which is not installed; "
            f"run: {INSTALL_HINT}"
        ) from exc
    return distributed


def run_batch(fn: Callable[[T], R], batch: Sequence[T]) -> list[R]:
    """Apply ``fn`` to every task of ``batch`` in order (runs on a Dask worker).

    Raises:
        FileProblemError: The first bad file of the batch, without its cause chain.
    """
    try:
        return [fn(task) for task in batch]
    except FileProblemError as exc:
        # Dask ships an error together with its causes, and the causes of a read failure
        # (rasterio's GDAL errors) do not unpickle, which would turn it into a bare Exception.
        # The error's message already names the file and the reason: send it alone, as the
        # local process pool does.
        exc.__cause__ = exc.__context__ = None
        raise


@contextmanager
def dask_chip_mapper(
    address: str, batch_size: int | None = None, timeout: float = 30.0
) -> Iterator[ChipMapper]:
    """Connect to a Dask scheduler and yield a chip mapper that runs on its workers.

    The client is opened at once (so a wrong address fails before any download) and closed when
    the ``with`` block ends. At most two batches per worker thread are in flight, and finished
    batches are released as soon as their records are handed on, so memory stays bounded however
    many chips the build has.

    Example:
        >>> with dask_chip_mapper("tcp://scheduler:8786") as mapper:  # doctest: +SKIP
        ...     build_dataset("m2s-gl", "/shared/data/m2s-gl", mapper=mapper)

    Args:
        address: The scheduler address, e.g. ``tcp://10.0.0.5:8786``.
        batch_size: Tasks per Dask task (default: about eight batches per worker thread, at most
            256 chips each, like the local process pool).
        timeout: Seconds to wait for the scheduler.

    Yields:
        A :data:`~msrgb_bench.pipelines.build.ChipMapper` for ``build_dataset(mapper=...)``.

    Raises:
        ImportError: If ``dask[distributed]`` is not installed.
        ConnectionError: If the scheduler cannot be reached within ``timeout``.
    """
    distributed = _distributed()
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc

    def mapper(fn: Callable[[Task], ChipRecord], tasks: list[Task]) -> Iterator[ChipRecord]:
        threads = max(1, sum(client.nthreads().values()))
        size = batch_size or chunk_size(len(tasks), threads)
        batches = (tasks[i : i + size] for i in range(0, len(tasks), size))
        in_flight: deque[Any] = deque()
        try:
            for batch in batches:
                in_flight.append(client.submit(run_batch, fn, batch, pure=False))
                if len(in_flight) >= 2 * threads:
                    yield from in_flight.popleft().result()
            while in_flight:
                # .result() re-raises a worker's exception as the original (picklable) error.
                yield from in_flight.popleft().result()
        finally:
            # On an error, let the batches already sent finish (at most two per thread) before
            # the build removes its staging folder: Dask cannot stop a running task, which would
            # go on writing chips into the folder being removed (the local pool waits too).
            for future in in_flight:
                future.exception()  # returns once the batch is done, whatever its outcome

    try:
        yield mapper
    finally:
        client.close()
