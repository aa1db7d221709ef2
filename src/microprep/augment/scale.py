"""Scale-out: the augment functions over dask arrays and on a ``dask.distributed`` cluster.

* :func:`noise_blocks`: pointwise noise kinds over a (large, chunked) dask array, block by
  block, each block with its own generator ``SeedSequence([seed, *block_index])``; the result
  depends on the chunking (same chunks, same result), not on the scheduler.
* :func:`run_on_cluster`: the per-copy tasks of ``prep augment --workers N`` on a
  ``LocalCluster`` of ``N`` worker processes; results come back in task order. Each task draws
  from ``SeedSequence([seed, node index, copy])``, so the output equals the in-process run.

Example:
    >>> import dask.array as da
    >>> from microprep.augment import parse_noise
    >>> arr = da.full((64, 64), 100, dtype="uint8", chunks=32)
    >>> noisy = noise_blocks(arr, parse_noise("poisson:dose=30"), seed=0)
    >>> noisy.compute().dtype
    dtype('uint8')
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from microprep.augment.pipeline import NoiseSpec, apply_noise
from microprep.cluster import local_cluster
from microprep.errors import UsageError

if TYPE_CHECKING:
    import dask.array as da

    from microprep.augment.nodes import Task
    from microprep.targets.types import Targets

logger = logging.getLogger(__name__)

__all__ = ["POINTWISE", "noise_blocks", "run_on_cluster"]

#: Noise kinds that act on each pixel alone, so block-wise application has no seams.
POINTWISE = ("gaussian", "poisson", "salt_and_pepper", "contrast")


def _noise_block(
    block: NDArray[Any], specs: tuple[NoiseSpec, ...], seed: int, block_info: Any = None
) -> NDArray[Any]:
    location = tuple(block_info[0]["chunk-location"]) if block_info else ()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), *location]))
    ndim = block.ndim if block.ndim in (2, 3) else 2
    return apply_noise(block, specs, rng, ndim=ndim)


def noise_blocks(array: da.Array, specs: Sequence[NoiseSpec], *, seed: int) -> da.Array:
    """Apply pointwise noise ``specs`` to a dask array, lazily, one generator per block.

    Raises:
        UsageError: a kind that is not pointwise (blur, jitter, background would show seams
            at block edges; apply those per sample).
    """
    bad = [s.kind for s in specs if s.kind not in POINTWISE]
    if bad:
        raise UsageError(
            f"noise {', '.join(bad)} cannot run block by block; use {', '.join(POINTWISE)}"
        )
    block_fn: Any = _noise_block
    result: da.Array = array.map_blocks(block_fn, tuple(specs), int(seed), dtype=array.dtype)
    return result


def run_on_cluster(
    tasks: Sequence[Task], *, workers: int
) -> Iterator[tuple[Targets, NDArray[Any] | None, dict[str, Any]]]:
    """Run :func:`microprep.augment.write.augment_node` for ``tasks`` on a LocalCluster.

    Yields the results in task order; at most ``4 * workers`` tasks are in flight, so memory
    stays bounded. The cluster is shut down when the iterator finishes or is closed.
    """
    from microprep.augment.write import augment_node

    with local_cluster(workers) as client:
        logger.info("augmenting on a LocalCluster of %d workers", workers)
        window = max(1, 4 * workers)
        pending: list[Any] = []
        next_task = 0
        while next_task < len(tasks) and len(pending) < window:
            pending.append(client.submit(augment_node, tasks[next_task], pure=False))
            next_task += 1
        while pending:
            future = pending.pop(0)
            result = future.result()
            if next_task < len(tasks):
                pending.append(client.submit(augment_node, tasks[next_task], pure=False))
                next_task += 1
            yield result
