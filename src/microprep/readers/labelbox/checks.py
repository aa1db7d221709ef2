"""Checks on the JSON of a Labelbox export, with errors that name the file, line and JSON path.

Every part of the Labelbox reader that walks the export derives from :class:`Checker`; a JSON
path is a :data:`JsonPath` tuple, turned into text only when an error is raised.

Example:
    >>> checks = Checker("export.ndjson")
    >>> checks.image_name({"external_id": "", "id": "a.png"}, ("external_id", "id"), 3, ())
    ('a.png', ('id',))
    >>> str(checks.format_error("bad", 3, ("data_row", "id")))
    'export.ndjson:3: $.data_row.id: bad'
"""

from __future__ import annotations

from typing import Any

from microprep.errors import FormatError
from microprep.readers.jsonsafe import describe, json_path
from microprep.readers.names import check_image_name

__all__ = ["Checker", "JsonPath", "describe"]

#: A JSON path as keys and list indices (turned into text only for error messages).
JsonPath = tuple[str | int, ...]


class Checker:
    """Structure checks on one export file (``file``, for messages); ``line`` is None for JSON."""

    def __init__(self, file: str) -> None:
        self.file = file

    def format_error(self, message: str, line: int | None, path: JsonPath) -> FormatError:
        """A FormatError at ``line`` and ``path`` of the export."""
        return FormatError(message, file=self.file, line=line, where=json_path(path))

    def member(
        self, parent: dict[str, Any], key: str, kind: type, line: int | None, path: JsonPath
    ) -> Any:
        """``parent[key]`` when it is a ``kind`` (or None when absent / null), else an error."""
        value = parent.get(key)
        if value is None or isinstance(value, kind):
            return value
        what = "an object" if kind is dict else "a list"
        raise self.format_error(f"expected {what}, got {describe(value)}", line, (*path, key))

    def first_string(
        self, item: dict[str, Any], keys: tuple[str, ...], line: int | None, path: JsonPath
    ) -> tuple[str, JsonPath] | None:
        """The first non-empty value among ``keys`` and its path; it must be a string."""
        for key in keys:
            value = item.get(key)
            if value is None or value == "":
                continue
            here = (*path, key)
            if not isinstance(value, str):
                raise self.format_error(f"expected a string, got {describe(value)}", line, here)
            return value, here
        return None

    def image_name(
        self, item: dict[str, Any], keys: tuple[str, ...], line: int | None, path: JsonPath
    ) -> tuple[str, JsonPath] | None:
        """:meth:`first_string`, checked as an image name (a relative path without ``..``)."""
        found = self.first_string(item, keys, line, path)
        if found is not None:
            check_image_name(found[0], file=self.file, line=line, path=found[1])
        return found
