"""Safe handling of names taken from exports (image names become file paths)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from microprep.errors import UnsafeInputError


def check_relative_name(name: str) -> PurePosixPath:
    """Return ``name`` as a relative POSIX path, or raise if it could escape a folder.

    Image names in exports may have folders (``"grid 1/a b.png"``) but never an absolute path,
    a drive, a backslash-separated escape or a ``..`` component.

    Example:
        >>> str(check_relative_name("grid 1/a b.png"))
        'grid 1/a b.png'
    """
    if not name or "\x00" in name:
        raise UnsafeInputError(f"image name {name!r} is empty or contains NUL")
    posix = PurePosixPath(name.replace("\\", "/"))
    if (
        posix.is_absolute()
        or PureWindowsPath(name).drive
        or any(part == ".." for part in posix.parts)
    ):
        raise UnsafeInputError(f"image name {name!r} escapes its folder (absolute path or '..')")
    return posix


def safe_join(root: Path, name: str) -> Path:
    """``root / name``, refusing names that escape ``root`` (see :func:`check_relative_name`).

    Symbolic links inside ``root`` that point outside it are refused too.
    """
    rel = check_relative_name(name)
    path = root.joinpath(*rel.parts)
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise UnsafeInputError(f"image name {name!r} resolves outside {root}") from None
    return path


#: An image file suffix at the end of a node name, or before its ``_aug<k>`` copy suffix.
_IMAGE_SUFFIX = re.compile(r"\.(?:png|jpe?g|tiff?|bmp)(?=(?:_aug\d+)?$)", re.IGNORECASE)


def picture_name(node: str, taken: set[str]) -> str:
    """The file name of the PNG picture of store node ``node`` (an overlay, a preview).

    The node's image suffix is dropped: the picture of node ``a.png`` is ``a.png``, not
    ``a.png.png``; that of ``a.tif_aug0`` is ``a_aug0.png``. When another picture of the same
    folder took that name already (``taken``, compared without case, updated here), the whole
    node name is kept, then a number added.

    Example:
        >>> taken: set[str] = set()
        >>> [picture_name(n, taken) for n in ("a.png", "a.tif", "b.png_aug1", "vol", "vol")]
        ['a.png', 'a.tif.png', 'b_aug1.png', 'vol.png', 'vol_1.png']
    """
    candidates = (_IMAGE_SUFFIX.sub("", node, count=1) + ".png", f"{node}.png")
    name = next((c for c in candidates if c.lower() not in taken), None)
    k = 1
    while name is None or name.lower() in taken:
        name, k = f"{node}_{k}.png", k + 1
    taken.add(name.lower())
    return name
