"""Semantic prediction of whole images and volumes into a prediction store, with overlays.

:func:`predict_semantic` reads every input of a source (:func:`~microprep.predict.inputs.
iter_inputs`: a dataset store, a folder, an image file or a TIFF stack), scales it
(``scale_fn``), predicts it tile by tile (:func:`~microprep.predict.tiles.predict_tiled`) and
writes ``PRED.zarr`` (:mod:`microprep.predict.write`) plus overlay PNGs in ``PRED.overlays/``
beside it. Both are built in temporary folders and swapped into place only when every input is
done (:func:`microprep.outputs.atomic_output`): a failed or interrupted run leaves any earlier
output as it was.

The model is any callable ``forward(batch)``: ``(B, C, *window)`` float32 ->
``(B, K, *window)`` float32 probabilities (wrap a torch module in ``torch.no_grad()`` and
``softmax``; see ``docs/predict.md``).

Example:
    >>> def forward(batch):  # a "model" that predicts class 1 where the pixel is bright
    ...     bright = batch[:, :1] > 0.5
    ...     return np.concatenate([~bright, bright], axis=1).astype(np.float32)
    >>> summary = predict_semantic(forward, "images/", "pred.zarr", window=256,
    ...                            classes=["background", "pore"])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.errors import InputError, UsageError
from microprep.model import DEFAULT_PALETTE
from microprep.outputs import atomic_output
from microprep.paths import picture_name
from microprep.predict.inputs import PredictionInput, iter_inputs
from microprep.predict.overlays import prediction_picture, save_picture, uncertainty_picture
from microprep.predict.scaling import ScaleFn, channels_first, unit_range, window_for
from microprep.predict.tiles import Forward, predict_tiled
from microprep.predict.truth import truth_wanted
from microprep.predict.write import PredictionWriter
from microprep.preview.montage import DEFAULT_SLICES, slice_indices
from microprep.progress import lines_wanted, with_progress_lines

__all__ = [
    "PredictionSummary",
    "ScaleFn",
    "channels_first",
    "default_colors",
    "overlays_path",
    "predict_semantic",
    "unit_range",
    "window_for",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PredictionSummary:
    """What :func:`predict_semantic` wrote.

    Attributes:
        out: the prediction store. overlays: the overlay folder (None without overlays).
        names: image names, in order. groups: their group names in the store.
        shapes: spatial shape per input. class_pixels: predicted pixels per class, all inputs.
        seconds: wall time.
    """

    out: Path
    overlays: Path | None
    names: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    class_pixels: list[int] = field(default_factory=list)
    seconds: float = 0.0


def default_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """Black for background, then the store's default palette (repeating)."""
    return [(0, 0, 0)] + [
        DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)] for i in range(max(0, num_classes - 1))
    ]


def overlays_path(out: str | Path) -> Path:
    """Where the overlays of ``out`` go: ``PRED.zarr`` -> ``PRED.overlays`` beside it.

    Example:
        >>> overlays_path("runs/pred.zarr").as_posix(), overlays_path("pred").as_posix()
        ('runs/pred.overlays', 'pred.overlays')
    """
    path = Path(out)
    stem = path.name[: -len(".zarr")] if path.name.endswith(".zarr") else path.name
    return path.with_name(stem + ".overlays")


def _name(record: PredictionInput) -> str:
    return record.name


def _inputs(source: str | Path | Iterable[PredictionInput]) -> Iterable[PredictionInput]:
    if isinstance(source, str | Path):
        return iter_inputs(source)
    return source


def _prob_dtype(probabilities: bool | str) -> str | None:
    if probabilities is False or probabilities is None:
        return None
    if probabilities is True:
        return "float16"
    if probabilities in ("float16", "float32"):
        return str(probabilities)
    raise UsageError(
        f"probabilities must be True, False, 'float16' or 'float32', not {probabilities!r}"
    )


def predict_semantic(
    forward: Forward,
    source: str | Path | Iterable[PredictionInput],
    out: str | Path,
    *,
    window: int | Sequence[int],
    classes: Sequence[str],
    colors: Sequence[Sequence[int]] | None = None,
    overlap: float = 0.25,
    batch_size: int = 4,
    scale_fn: ScaleFn = unit_range,
    in_channels: int | None = None,
    probabilities: bool | str = False,
    uncertainty: bool = False,
    overlays: bool = True,
    overlay_slices: int = DEFAULT_SLICES,
    run: Mapping[str, Any] | None = None,
    overwrite: bool = True,
    progress: bool = True,
) -> PredictionSummary:
    """Predict class maps of every input of ``source`` and write ``out`` (and its overlays).

    Args:
        forward: the model: ``(B, C, *window)`` float32 -> ``(B, K, *window)`` float32
            probabilities, ``K = len(classes)``.
        source: a dataset store, a folder of images, an image or TIFF stack file, or
            :class:`~microprep.predict.inputs.PredictionInput` records.
        out: the prediction store to write (``PRED.zarr``).
        window: tile size per spatial axis in pixels (one int for all axes; see
            :func:`window_for` for sources that mix images and volumes).
        classes: class names by index, background first (the training store's ``classes``).
        colors: RGB per class (default: black, then the default palette).
        overlap: fraction of the window shared by neighbouring tiles, ``[0, 1)``.
        batch_size: tiles per ``forward`` call.
        scale_fn: ``(C, *spatial)`` pixels in the file's dtype -> float32 of the same shape;
            pass the normalisation the model was trained with (default :func:`unit_range`).
        in_channels: channels the model takes (see :func:`channels_first`); None: as stored.
        probabilities: also store blended probabilities: True or ``"float16"``, ``"float32"``.
        uncertainty: also store the per-pixel uncertainty (normalised entropy of the blended
            probabilities) and each input's mean (see :mod:`microprep.predict.write`), and
            write its heat map to ``uncertainty/`` in the overlay folder.
        overlays: write overlay PNGs to :func:`overlays_path` of ``out``.
        overlay_slices: slices shown per volume.
        run: facts about the run stored in the root attributes (model, checkpoint, ...).
        overwrite: replace an earlier ``out`` (only once the new one is complete).
        progress: show progress bars.

    Returns:
        A :class:`PredictionSummary`.

    Raises:
        UsageError: bad options, a model output of the wrong shape, or pixels whose channels
            do not fit. InputError / ImageFileError: unreadable inputs or no inputs.
        StoreError, LockedError: the outputs cannot be written.
    """
    start_time = time.perf_counter()
    out = Path(out)
    names = [str(c) for c in classes]
    if len(names) < 1:
        raise UsageError("classes must name at least the background")
    palette = list(colors) if colors is not None else default_colors(len(names))
    prob_dtype = _prob_dtype(probabilities)
    if overlay_slices < 1:
        raise UsageError(f"overlay_slices must be 1 or more, got {overlay_slices}")
    over_path = overlays_path(out) if overlays else None
    summary = PredictionSummary(out=out, overlays=over_path, class_pixels=[0] * len(names))
    info = {
        "window": window if isinstance(window, int) else list(window),
        "overlap": overlap,
        "source": str(source) if isinstance(source, str | Path) else None,
        **dict(run or {}),
    }
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_output(out, overwrite=overwrite))
        tmp_over = stack.enter_context(atomic_output(over_path)) if over_path else None
        writer = PredictionWriter(
            tmp, classes=names, colors=palette, kind="semantic", run=info, uncertainty=uncertainty
        )
        inputs = with_progress_lines(
            _inputs(source), what="predicted", enabled=lines_wanted(progress), name=_name
        )
        bar = tqdm(inputs, desc="predict", unit="input", disable=None if progress else True)
        pictures: set[str] = set()  # overlay file names taken
        for record in bar:
            _predict_one(
                record,
                writer,
                forward,
                window=window,
                overlap=overlap,
                batch_size=batch_size,
                scale_fn=scale_fn,
                in_channels=in_channels,
                prob_dtype=prob_dtype,
                overlay_dir=tmp_over,
                overlay_names=pictures,
                overlay_slices=overlay_slices,
                colors=palette,
                summary=summary,
                progress=progress,
            )
        if not summary.names:
            raise InputError(f"nothing to predict in {source}")
        writer.close()
    summary.seconds = time.perf_counter() - start_time
    logger.info("predicted %d inputs into %s in %.1f s", len(summary.names), out, summary.seconds)
    return summary


def _predict_one(
    record: PredictionInput,
    writer: PredictionWriter,
    forward: Forward,
    *,
    window: int | Sequence[int],
    overlap: float,
    batch_size: int,
    scale_fn: ScaleFn,
    in_channels: int | None,
    prob_dtype: str | None,
    overlay_dir: Path | None,
    overlay_names: set[str],
    overlay_slices: int,
    colors: Sequence[Sequence[int]],
    summary: PredictionSummary,
    progress: bool,
) -> None:
    raw = np.asarray(record.image)
    try:
        pixels = channels_first(raw, ndim=record.ndim, in_channels=in_channels)
    except UsageError as exc:
        raise UsageError(f"{record.source}: {exc}") from exc
    scaled = np.asarray(scale_fn(pixels), dtype=np.float32)
    if scaled.shape[1:] != pixels.shape[1:] or scaled.ndim != pixels.ndim:
        raise UsageError(
            f"{record.source}: scale_fn returned shape {scaled.shape} for pixels of shape "
            f"{pixels.shape}; it must keep (C, *spatial)"
        )
    spatial = tuple(int(s) for s in scaled.shape[1:])
    node = writer.begin(
        record.name, spatial, probabilities=prob_dtype, attrs={"source": record.source}
    )
    wanted = set(slice_indices(spatial[0], overlay_slices)) if record.ndim == 3 else set()
    planes: dict[int | None, NDArray[Any]] = {}
    rows: list[NDArray[Any]] = []
    heat: dict[int | None, NDArray[Any]] = {}  # uncertainty planes for the heat map
    heat_rows: list[NDArray[Any]] = []

    def on_rows(start: int, stop: int, probs: NDArray[np.float32]) -> None:
        labels = writer.write_rows(node, start, stop, probs)
        if overlay_dir is None:
            return
        unc = node.last_uncertainty
        if record.ndim == 2:
            rows.append(labels)
            if unc is not None:
                heat_rows.append(unc.astype(np.float16))
        for z in wanted & set(range(start, stop)):
            planes[z] = labels[z - start].copy()
            if unc is not None:
                heat[z] = unc[z - start].copy()

    predict_tiled(
        forward,
        scaled,
        window=window_for(window, record.ndim),
        overlap=overlap,
        batch_size=batch_size,
        num_outputs=len(writer.classes),
        on_rows=on_rows,
        progress=progress,
    )
    writer.finish_node(node)
    summary.names.append(record.name)
    summary.groups.append(node.group)
    summary.shapes.append(spatial)
    summary.class_pixels = [
        a + int(b) for a, b in zip(summary.class_pixels, node.class_pixels, strict=True)
    ]
    if overlay_dir is not None:
        if record.ndim == 2:
            planes[None] = np.concatenate(rows, axis=0)
        picture = prediction_picture(
            raw,
            planes,
            title=record.name,
            colors=colors,
            names=writer.classes,
            depth=spatial[0] if record.ndim == 3 else None,
            truth=_truth_planes(record, planes) if truth_wanted() else None,
        )
        file_name = picture_name(node.group, overlay_names)
        save_picture(picture, overlay_dir / file_name)
        if heat_rows:
            heat[None] = np.concatenate(heat_rows, axis=0)
        if heat:
            depth = spatial[0] if record.ndim == 3 else None
            heat_map = uncertainty_picture(heat, title=record.name, depth=depth)
            save_picture(heat_map, overlay_dir / "uncertainty" / file_name)


def _truth_planes(
    record: PredictionInput, planes: Mapping[int | None, NDArray[Any]]
) -> dict[int | None, NDArray[Any]] | None:
    """The input's ground-truth class map at the overlay's planes (None when it has none)."""
    labels = record.truth.get("labels")
    if labels is None:
        logger.info("%s: no ground truth; its overlay shows the prediction alone", record.source)
        return None
    return {z: np.asarray(labels if z is None else labels[z]) for z in planes}
