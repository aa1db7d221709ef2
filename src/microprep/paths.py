"""Safe handling of names taken from exports (image names become file paths)."""

from __future__ import annotations

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
