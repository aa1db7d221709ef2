"""The images of a Labelbox export: their sizes, and their names checked for reuse.

A checking pass hands out new images (:class:`NewImages`: sizes from the export's media
attributes, else from the options); the streaming pass hands the same images out again, in the
same order (:class:`KnownImages`), and a difference means the file changed in between.

Example:
    >>> from microprep.readers.options import ReadOptions
    >>> images = NewImages("e.ndjson", ReadOptions())
    >>> size = images.size({"width": 8, "height": 6}, 1, "a.png", ("media_attributes",))
    >>> images.image("a.png", None, size, 1, ("data_row", "external_id"))
    ImageInfo(name='a.png', width=8, height=6, id=None, frame=None, subset=None)
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from microprep.errors import FormatError, GeometryError, ImageFileError, InputError, UsageError
from microprep.model import ImageInfo
from microprep.paths import check_relative_name
from microprep.readers.image_sizes import MAX_IMAGE_SIDE, header_size
from microprep.readers.jsonsafe import json_path, json_text
from microprep.readers.labelbox.checks import JsonPath, describe
from microprep.readers.options import ReadOptions


def image_side(value: Any, key: str, *, file: str, line: int | None, path: JsonPath) -> int:
    """An image side from the export: an integer in ``1..MAX_IMAGE_SIDE``.

    Raises FormatError when missing or not an integer, GeometryError when out of range.
    """
    where = json_path((*path, key))
    if value is None:
        raise FormatError(f"missing {json.dumps(key)}", file=file, line=line, where=json_path(path))
    if type(value) is not int:
        raise FormatError(
            f"image {key} must be an integer, got {describe(value)}",
            file=file,
            line=line,
            where=where,
        )
    if not 1 <= value <= MAX_IMAGE_SIDE:
        raise GeometryError(
            f"image {key} {value} is outside 1..{MAX_IMAGE_SIDE}", file=file, line=line, where=where
        )
    return value


class ImageSource(Protocol):
    """Where a pass gets its images: :class:`NewImages` (checking) or :class:`KnownImages`."""

    def size(self, media: Any, line: int | None, name: str, path: JsonPath) -> Any:
        """The image size for the media attributes ``media`` (None when already known)."""

    def image(
        self, name: str, frame: int | None, size: Any, line: int | None, path: JsonPath
    ) -> ImageInfo:
        """The ImageInfo of the next image, called ``name``."""

    def finish(self) -> None:
        """Called after the last image."""


class NewImages:
    """The checking pass's images: sizes (export, else options), names checked for reuse.

    Args:
        file: the export's path, for messages.
        options: the reader options (``size``, ``images``) used when the export has no size.
    """

    def __init__(self, file: str, options: ReadOptions) -> None:
        self.file = file
        self.options = options
        self.images: list[ImageInfo] = []
        self._seen: dict[str, str] = {}

    def size(self, media: Any, line: int | None, name: str, path: JsonPath) -> tuple[int, int]:
        """``(width, height)`` from the media attributes at ``path``, else from the options."""
        if media is not None and not isinstance(media, dict):
            raise FormatError(
                f"expected an object, got {describe(media)}",
                file=self.file,
                line=line,
                where=json_path(path),
            )
        if media and (media.get("width") is not None or media.get("height") is not None):
            width = image_side(media.get("width"), "width", file=self.file, line=line, path=path)
            height = image_side(media.get("height"), "height", file=self.file, line=line, path=path)
            return width, height
        return self._fallback(line, name)

    def _fallback(self, line: int | None, name: str) -> tuple[int, int]:
        place = self.file if line is None else f"{self.file}:{line}"
        if self.options.size is not None:
            width, height = self.options.size
            if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
                raise UsageError(f"image size {width}x{height} is outside 1..{MAX_IMAGE_SIDE}")
            return int(width), int(height)
        if self.options.images is not None:
            try:
                width, height = header_size(self.options.images, name)
            except ImageFileError as exc:
                raise ImageFileError(
                    f"{exc.message} ({exc.file})",
                    file=self.file,
                    line=line,
                    where=f"image {json_text(name, 80)}",
                ) from exc
            width = image_side(width, "width", file=self.file, line=line, path=())
            height = image_side(height, "height", file=self.file, line=line, path=())
            return width, height
        raise UsageError(
            f"{place}: image {json_text(name, 80)} has no size in the export (media attributes); "
            "pass --size WxH (the size of every image) or --images DIR (to read it from the "
            "image files)"
        )

    def image(
        self, name: str, frame: int | None, size: tuple[int, int], line: int | None, path: JsonPath
    ) -> ImageInfo:
        """A new image; its name (normalised) must not have been used before."""
        key = str(check_relative_name(name))
        place = "" if line is None else f"line {line}, "
        if key in self._seen:
            raise FormatError(
                f"image name {json_text(name, 80)} is used twice (first at {self._seen[key]})",
                file=self.file,
                line=line,
                where=json_path(path),
            )
        self._seen[key] = place + json_path(path)
        info = ImageInfo(name, size[0], size[1], frame=frame)
        self.images.append(info)
        return info

    def finish(self) -> None:
        """Nothing to check at the end of the checking pass."""


class KnownImages:
    """The images of the checking pass, handed out again in order by the streaming pass."""

    def __init__(self, file: str, images: tuple[ImageInfo, ...]) -> None:
        self.file = file
        self._images = iter(images)

    def size(self, media: Any, line: int | None, name: str, path: JsonPath) -> None:
        """Sizes are known from the checking pass."""
        return None

    def image(
        self, name: str, frame: int | None, size: object, line: int | None, path: JsonPath
    ) -> ImageInfo:
        """The next image of the checking pass; it must be ``name`` (else the file changed)."""
        info = next(self._images, None)
        if info is None or info.name != name or info.frame != frame:
            raise self._changed(line)
        return info

    def finish(self) -> None:
        """Every image of the checking pass must have come again."""
        if next(self._images, None) is not None:
            raise self._changed(None)

    def _changed(self, line: int | None) -> InputError:
        return InputError(
            "the file changed since it was read; read it again", file=self.file, line=line
        )
