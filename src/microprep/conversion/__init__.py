"""``prep convert``: an export file in, every requested target out, written atomically.

The export is read and checked completely before anything is written; outputs are built in a
temporary folder beside ``out`` and swapped in only when complete (see :mod:`microprep.outputs`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from microprep.classes import ClassOptions, apply_classes, region_warning
from microprep.conversion.bands import convert_banded, plan_group
from microprep.conversion.changes import compare, snapshot
from microprep.conversion.precheck import check_beside_worthwhile, checked, checks_beside
from microprep.errors import ImageFileError, UsageError
from microprep.exports import Sink
from microprep.exports.kinds import STORE_NAME
from microprep.imagefiles import FolderImages, ImageSource, find_images, image_names, node_names
from microprep.memory import default_budget
from microprep.model import AnnotatedImage, AnnotationSet
from microprep.outputs import atomic_output
from microprep.pixelsize import images_pixel_size
from microprep.readers import ReadOptions, read_annotations
from microprep.registry import SinkKind, output_path, resolve, sink_kinds
from microprep.targets import RasterOptions, Targets, build_targets, build_volume_targets
from microprep.targets.bands import BandedTargets

log = logging.getLogger(__name__)

__all__ = ["STORE_NAME", "ConvertOptions", "ConvertSummary", "convert"]


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    """What ``convert`` writes and how.

    ``to``: output kinds (see :func:`microprep.registry.sink_kinds`). ``images``: folder of the
    image files, by their names in the export (needed for pixels in the store); None: for CVAT
    exports, the ``images/`` folder CVAT writes beside the annotations or into the export
    archive, if there is one (see :mod:`microprep.imagefiles`). ``volume``: stack every image
    (frames of a track export: slices) into one ``(Z, H, W)`` volume. ``skip_missing``: leave out
    images whose file is missing instead of failing. ``raster``: line width / point radius.
    ``format``: reader to use (detected when None). ``repair``: apply the documented repairs
    of ``prep validate`` instead of refusing repairable errors. ``read``: what readers of formats
    without image sizes or classes need (VIA, Labelbox). ``check_beside``: run the checks in a
    second process while converting (None: for large exports; see
    :mod:`microprep.conversion.precheck`).
    ``classes``: class order, renames, drops, ignore and annotated regions, applied after the
    reader and before the checks (see :mod:`microprep.classes`). ``pixel_size``: ``(size,
    unit)`` of one pixel, for the outputs that record it (ome-zarr, nnunet; None: from the TIFF
    metadata of the images, see :mod:`microprep.pixelsize`). ``max_memory``: the
    memory budget in bytes (None: :func:`microprep.memory.default_budget`); larger images are
    built in bands of rows or refused (see :mod:`microprep.memory`).
    """

    to: tuple[str, ...] = ("zarr",)
    images: Path | None = None
    volume: bool = False
    skip_missing: bool = False
    raster: RasterOptions = RasterOptions()
    format: str | None = None
    progress: bool = False
    repair: bool = False
    read: ReadOptions = ReadOptions()
    check_beside: bool | None = None
    classes: ClassOptions = ClassOptions()
    pixel_size: tuple[float, str] | None = None
    max_memory: int | None = None


@dataclass(slots=True)
class ConvertSummary:
    """What a conversion did: counts per image kind, the classes, where outputs went."""

    source: Path
    format: str
    classes: tuple[str, ...]
    images: int = 0
    shapes: int = 0
    objects: int = 0
    skipped_objects: int = 0
    pixels_per_class: list[int] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    missing_images: list[str] = field(default_factory=list)
    images_from: str | None = None
    repairs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    changes: list[str] = field(default_factory=list)  # vs the store replaced (conversion.changes)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks; of a folder (label images), over its files'
    relative names and contents in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _sinks(
    root: Path, kinds: Sequence[SinkKind], annotations: AnnotationSet, provenance: dict[str, Any]
) -> list[Sink]:
    sinks = []
    for kind in kinds:
        target = output_path(root, kind, alone=len(kinds) == 1) if kind.store else root
        if target != root:
            target.mkdir()
        sinks.append(kind.factory(target, annotations.labels, provenance=provenance))
    return sinks


def _check_kinds(names: Sequence[str]) -> list[SinkKind]:
    return resolve(tuple(names), sink_kinds, "output kind")


def _missing(names: list[str], folder: ImageSource, skip_missing: bool, source: Path) -> set[str]:
    """Names whose image file is missing (an error unless ``skip_missing``)."""
    missing = {name for name in names if not folder.is_file(name)}
    if missing and not skip_missing:
        first = next(name for name in names if name in missing)
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ImageFileError(
            f"image file {first!r}{more} not found in {folder.label} "
            "(--skip-missing leaves such images out)",
            file=source,
        )
    return missing


def _image_source(export: Path, options: ConvertOptions, fmt: str) -> ImageSource | None:
    """``--images``, else the images CVAT lays out beside (or inside) a CVAT export."""
    if options.images is not None:
        return FolderImages(options.images)
    return find_images(export) if fmt.startswith("cvat") else None


def _items(
    annotations: AnnotationSet, files: list[str], nodes: list[str], missing: set[str], volume: bool
) -> Iterator[list[tuple[AnnotatedImage, str]]]:
    """Stream the images (named after their nodes, missing files left out) with their file
    names, one by one, or all as one volume; the slices of one stack file (consecutive images
    of one file with frame numbers, as label stacks give) come as one volume."""
    renamed = (
        (AnnotatedImage(replace(item.image, name=node), item.shapes), file)
        for item, file, node in zip(annotations, files, nodes, strict=True)
        if file not in missing
    )
    if volume:
        yield list(renamed)
        return
    for _, pairs in groupby(renamed, key=lambda pair: (pair[1], pair[0].image.frame is None)):
        run = list(pairs)
        if _is_stack(run):
            yield run
        else:
            yield from ([pair] for pair in run)


def _is_stack(run: Sequence[tuple[AnnotatedImage, str]]) -> bool:
    """Slices of one stack file: two or more images of one file, with frame numbers."""
    return len(run) > 1 and run[0][0].image.frame is not None


def _group_count(annotations: AnnotationSet, files: list[str], missing: set[str]) -> int:
    """How many groups :func:`_items` yields without ``volume`` (from the image list only)."""
    keys = [
        (file, image.frame is None)
        for image, file in zip(annotations.images, files, strict=True)
        if file not in missing
    ]
    return sum(
        1 if not frameless and n > 1 else n
        for (_, frameless), n in ((k, len(list(g))) for k, g in groupby(keys))
    )


def _load_pixels(
    source: ImageSource, group: Sequence[tuple[AnnotatedImage, str]]
) -> NDArray[np.generic]:
    planes: list[NDArray[Any]] = []
    for file, run in groupby(group, key=lambda pair: pair[1]):
        items = [item for item, _ in run]
        size = (items[0].image.width, items[0].image.height)
        if not _is_stack([(item, file) for item in items]):
            planes += [source.load(file, expected=(i.image.width, i.image.height)) for i in items]
            continue
        pages = source.load_pages(file, expected=size)
        if len(pages) != len(items):
            raise ImageFileError(
                f"a stack of {len(pages)} pages, but its labels have {len(items)} slices",
                file=source.where(file),
            )
        planes += list(pages)
    return planes[0] if len(planes) == 1 else np.stack(planes)


def convert(export: Path, out: Path, options: ConvertOptions = ConvertOptions()) -> ConvertSummary:
    """Convert ``export`` into the outputs named in ``options.to`` at ``out``.

    With ``to == ("zarr",)`` the store is ``out`` itself; with file exports ``out`` is a folder
    holding them (``masks/``, ``onehot/``, ``coco.json``, ``labels/`` + ``data.yaml``,
    ``classes.txt``) and the store, if asked for too, is ``out/dataset.zarr``.

    Returns a :class:`ConvertSummary`. Raises a :class:`~microprep.errors.PrepError` on bad
    input, before anything is written; an existing ``out`` is only replaced by a complete one.

    Example:
        >>> convert(Path("annotations.xml"), Path("dataset.zarr"))  # doctest: +SKIP
    """
    start = time.perf_counter()
    export = Path(export)
    kinds = _check_kinds(options.to)
    warnings: list[str] = []
    annotations = read_annotations(
        export, format=options.format, on_warning=warnings.append, options=options.read
    )
    raw_labels = annotations.labels
    annotations = apply_classes(annotations, options.classes)
    beside = options.check_beside
    if beside is None:
        beside = not options.repair and check_beside_worthwhile(export)
    repairs: list[str] = []
    if not beside:
        annotations, repairs = checked(
            annotations, repair=options.repair, on_warning=warnings.append
        )
    summary = ConvertSummary(
        source=export,
        format=annotations.format,
        classes=annotations.labels.class_names,
        warnings=list(annotations.warnings),
        repairs=repairs,
    )
    counts = np.zeros(annotations.labels.num_classes, dtype=np.int64)
    store_kind = next((kind for kind in kinds if kind.name == "zarr"), None)
    store_path = None if store_kind is None else output_path(out, store_kind, alone=len(kinds) == 1)
    before = None if store_path is None else snapshot(store_path)  # the store being replaced
    regions = annotations.labels.names_with_role("region")
    no_region: list[str] = []
    with ExitStack() as stack:
        source = _image_source(export, options, annotations.format)
        if source is not None:
            stack.enter_context(source)
            summary.images_from = source.label
        names = image_names(annotations, source)
        nodes = node_names(annotations, names, source)
        missing: set[str] = set()
        if source is not None:
            missing = _missing(names, source, options.skip_missing, export)
            summary.missing_images = [name for name in names if name in missing]
        if options.volume and len(missing) == len(names):
            raise UsageError(f"{export}: no images to stack into a volume")
        pixel_size = options.pixel_size
        if pixel_size is None and source is not None:
            files = [name for name in names if name not in missing]
            pixel_size = images_pixel_size(source, files, on_warning=warnings.append)
        provenance: dict[str, Any] = {
            "pixel_size": pixel_size,
            "source": export.name,
            "sha256": sha256(export),
            "source_format": annotations.format,
            "options": {
                "to": [kind.name for kind in kinds],
                "volume": options.volume,
                "line_width": options.raster.line_width,
                "point_radius": options.raster.point_radius,
                "images": source is not None,
                "pixel_size": None if pixel_size is None else list(pixel_size),
            },
            "class_mapping": (
                options.classes.provenance(raw_labels) if options.classes.active else None
            ),
        }
        wait_for_checks = (
            stack.enter_context(
                checks_beside(export, options.format, options.read, classes=options.classes)
            )
            if beside
            else None
        )
        budget = options.max_memory or default_budget()
        tmp = stack.enter_context(atomic_output(out))
        sinks = _sinks(tmp, kinds, annotations, provenance)
        total = 1 if options.volume else _group_count(annotations, names, missing)
        groups = _items(annotations, names, nodes, missing, options.volume)
        for group in tqdm(
            groups,
            desc="converting",
            unit="item",
            total=total,
            disable=None if options.progress else True,
        ):
            items = [item for item, _ in group]
            plan = plan_group(
                items, _group_name(items, annotations, options.volume),
                kinds=kinds, labels=annotations.labels, options=options.raster, budget=budget,
                pixels=source is not None,
            )  # fmt: skip
            built: Targets | BandedTargets
            if plan.band_rows is not None:
                load = None if source is None else partial(_load_pixels, source, group)
                built, band_counts = convert_banded(
                    items[0], annotations.labels, options.raster, band_rows=plan.band_rows,
                    sinks=sinks, load_pixels=load,
                )  # fmt: skip
                counts += band_counts
            else:
                built = _targets(items, annotations, options)
                pixels = _load_pixels(source, group) if source is not None else None
                for sink in sinks:
                    sink.add(built, pixels)
                counts += np.bincount(built.class_map.ravel(), minlength=counts.size)[: counts.size]
            no_region += [
                item.image.name
                for item in items
                if regions and not any(s.label in regions for s in item.shapes)
            ]
            summary.images += len(items)
            summary.shapes += sum(len(item.shapes) for item in items)
            summary.objects += len(built.instances)
            summary.skipped_objects += built.skipped
        for sink in sinks:
            sink.close()
        if wait_for_checks is not None:
            warnings += wait_for_checks()  # errors leave the temporary output unswapped
    summary.pixels_per_class = counts.tolist()
    if (line := region_warning(no_region, annotations.labels)) is not None:
        summary.warnings.append(line)
    for kind in kinds:
        summary.outputs[kind.name] = output_path(out, kind, alone=len(kinds) == 1)
    summary.warnings.extend(w for w in warnings if w not in summary.warnings)
    if before is not None and store_path is not None and (after := snapshot(store_path)):
        summary.changes = compare(before, after).lines()
    summary.seconds = time.perf_counter() - start
    return summary


def _group_name(items: list[AnnotatedImage], annotations: AnnotationSet, volume: bool) -> str:
    """The node name: the image's, a stack file's (its slices share it), or the export's."""
    return annotations.source.stem if volume else items[0].image.name


def _targets(
    group: list[AnnotatedImage], annotations: AnnotationSet, options: ConvertOptions
) -> Targets:
    if options.volume or len(group) > 1:
        name = _group_name(group, annotations, options.volume)
        return build_volume_targets(name, group, annotations.labels, options.raster)
    return build_targets(group[0], annotations.labels, options.raster)
