"""Labelbox model-assisted labelling (MAL) import NDJSON: one annotation per line.

Each line (the NDJSON that ``labelbox.MALPredictionImport.create_from_objects`` or
``create_from_file`` uploads)::

    {"uuid": "<a fresh uuid4>", "dataRow": {"globalKey": "a.png"}, "name": "pore",
     "polygon": [{"x": 0, "y": 0}, {"x": 2, "y": 0}, {"x": 2, "y": 1}]}

``name`` is the ontology feature's name (the class); ``dataRow`` names the data row by its
``globalKey`` or, when the export has none, by its ``id``. With ``--like`` (a Labelbox NDJSON
export v2 or JSON export v1 of the project) both come from the export's data rows; without it
the image name is taken for the global key. Labelbox polygons have no holes and MAL imports take
no score, so scores are not written (instances are still written highest score first).
Labelbox polygons cannot be joined into one object, so the pieces of an instance written as
several polygons (a split mask, or holes cut out) carry the same nested free-text
classification ``group_id`` (``"classifications": [{"name": "group_id", "answer": "3"}]``, the
MAL form of a text sub-classification; the ontology needs a text classification ``group_id``
under the tool); microprep's Labelbox reader joins them back into one object.

Example:
    >>> from microprep.writers.shapes import ImageShapes, OutShape
    >>> s = OutShape("polygon", "pore", 1, np.array([[0.0, 0], [2, 0], [2, 1]]), 0)
    >>> line = json.loads(labelbox_ndjson([ImageShapes("a.png", 4, 4, (s,))]).splitlines()[0])
    >>> line["dataRow"], line["name"], line["polygon"][1]
    ({'globalKey': 'a.png'}, 'pore', {'x': 2, 'y': 0})
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from microprep.readers.groups import GROUP_ATTRIBUTE
from microprep.readers.jsonsafe import iter_ndjson, load_json
from microprep.writers.groups import split_groups
from microprep.writers.like import Like
from microprep.writers.shapes import ImageShapes

__all__ = ["data_rows", "labelbox_ndjson"]

logger = logging.getLogger(__name__)


def _ref(row_id: Any, global_key: Any) -> dict[str, str]:
    if isinstance(global_key, str) and global_key:
        return {"globalKey": global_key}
    return {"id": str(row_id)}


def data_rows(path: Path) -> dict[str, dict[str, str]]:
    """Image name (the reader's rule: external id, else global key, else id) -> the
    ``dataRow`` reference of a Labelbox export's data rows."""
    out: dict[str, dict[str, str]] = {}
    with open(path, "rb") as fh:
        first = fh.read(64).lstrip()[:1]
    if first == b"[":
        for entry in load_json(path):
            if isinstance(entry, dict):
                row_id, key = entry.get("DataRow ID"), entry.get("Global Key")
                name = entry.get("External ID") or key or row_id
                out[str(name)] = _ref(row_id, key)
        return out
    for _, row in iter_ndjson(path):
        data_row = row.get("data_row") if isinstance(row, dict) else None
        if isinstance(data_row, dict):
            row_id, key = data_row.get("id"), data_row.get("global_key")
            name = data_row.get("external_id") or key or row_id
            out[str(name)] = _ref(row_id, key)
    return out


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def labelbox_ndjson(images: Iterable[ImageShapes], *, like: Like | None = None) -> bytes:
    """The MAL import NDJSON of ``images`` (module docstring)."""
    rows = data_rows(like.path) if like is not None else {}
    lines = []
    for image in images:
        name = like.images[image.name].name if like is not None else image.name
        ref = rows.get(name, {"globalKey": name})
        split = split_groups(image.shapes)
        for shape in sorted(image.shapes, key=lambda s: -s.z_order):
            points = np.asarray(shape.points, np.float64)
            record: dict[str, Any] = {
                "uuid": str(uuid.uuid4()),
                "dataRow": ref,
                "name": shape.label,
                "polygon": [{"x": _number(x), "y": _number(y)} for x, y in points],
            }
            if shape.group in split:
                record["classifications"] = [{"name": GROUP_ATTRIBUTE, "answer": str(shape.group)}]
            lines.append(json.dumps(record, separators=(",", ":")))
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
