"""The image and shape tables of a report, and their pandera schemas (read from YAML files).

Tables (column order as listed; docs/validate.md describes each column):

* images: ``name, width, height, frame, subset, n_shapes, file_exists, file_width, file_height``
  (``file_*`` are null without an image folder);
* shapes: ``image, order, label, kind, x_min, y_min, x_max, y_max, area, n_vertices, z_order,
  occluded, group, track_id, rotation``.

The schemas are ``schemas/images.yaml`` and ``schemas/shapes.yaml`` (pandera's YAML format),
loaded from those files at run time; :func:`reference_schemas` holds the definitions they were
written from with :func:`write_schemas`. Two custom checks are registered with pandera for them:
``finite_unless_kind`` and ``not_less_than``.

Example:
    >>> import pandas as pd
    >>> schema = load_table_schema("images")
    >>> sorted(schema.columns)[:3]
    ['file_exists', 'file_height', 'file_width']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera import extensions
from pandera.errors import SchemaError, SchemaErrors

from microprep.model import SHAPE_KINDS
from microprep.schemas import schema_path
from microprep.validate.checks import Batch
from microprep.validate.geometry import Measures
from microprep.validate.report import Finding
from microprep.validate.schema_messages import schema_message

logger = logging.getLogger(__name__)

TABLES = ("images", "shapes")
IMAGE_COLUMNS = (
    "name", "width", "height", "frame", "subset", "n_shapes", "file_exists", "file_width",
    "file_height",
)  # fmt: skip
SHAPE_COLUMNS = (
    "image", "order", "label", "kind", "x_min", "y_min", "x_max", "y_max", "area", "n_vertices",
    "z_order", "occluded", "group", "track_id", "rotation",
)  # fmt: skip
_BOUNDS = ["x_min", "y_min", "x_max", "y_max"]


def finite_unless_kind(df: pd.DataFrame, *, columns: list[str], kinds: list[str]) -> pd.Series:
    """Rows whose ``columns`` are all finite, or whose ``kind`` is one of ``kinds``."""
    values = df[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(values).all(axis=1) | df["kind"].isin(kinds).to_numpy()
    return pd.Series(ok, index=df.index)


def not_less_than(df: pd.DataFrame, *, pairs: list[list[str]]) -> pd.Series:
    """Rows where ``df[a] >= df[b]`` for each ``[a, b]`` in ``pairs`` (nulls pass)."""
    ok = np.ones(len(df), dtype=bool)
    for a, b in pairs:
        va = df[a].to_numpy(dtype=np.float64, na_value=np.nan)
        vb = df[b].to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            ok &= ~(va < vb)
    return pd.Series(ok, index=df.index)


def _register() -> None:
    registered = getattr(pa.Check, "REGISTERED_CUSTOM_CHECKS", {})
    if "finite_unless_kind" not in registered:
        extensions.register_check_method(
            statistics=["columns", "kinds"], supported_types=pd.DataFrame
        )(finite_unless_kind)
    if "not_less_than" not in registered:
        extensions.register_check_method(statistics=["pairs"], supported_types=pd.DataFrame)(
            not_less_than
        )


_register()


def reference_schemas() -> dict[str, pa.DataFrameSchema]:
    """The definitions ``schemas/images.yaml`` and ``schemas/shapes.yaml`` were written from.

    Run time never uses these: :func:`load_table_schema` reads the YAML files.
    """
    images = pa.DataFrameSchema(
        {
            "name": pa.Column(str, pa.Check.str_length(min_value=1)),
            "width": pa.Column("int64", pa.Check.gt(0)),
            "height": pa.Column("int64", pa.Check.gt(0)),
            "frame": pa.Column("Int64", pa.Check.ge(0), nullable=True),
            "subset": pa.Column(str, nullable=True),
            "n_shapes": pa.Column("int64", pa.Check.ge(0)),
            "file_exists": pa.Column("boolean", nullable=True),
            "file_width": pa.Column("Int64", pa.Check.gt(0), nullable=True),
            "file_height": pa.Column("Int64", pa.Check.gt(0), nullable=True),
        },
        name="images",
        strict=True,
        description="One row per image of an annotation export (microprep validate).",
    )
    bound = {c: pa.Column("float64", nullable=True) for c in _BOUNDS}
    shapes = pa.DataFrameSchema(
        {
            "image": pa.Column(str, pa.Check.str_length(min_value=1)),
            "order": pa.Column("int64", pa.Check.ge(0)),
            "label": pa.Column(str, pa.Check.str_length(min_value=1)),
            "kind": pa.Column(str, pa.Check.isin(list(SHAPE_KINDS))),
            **bound,
            "area": pa.Column("float64", pa.Check.ge(0), nullable=True),
            "n_vertices": pa.Column("int64", pa.Check.ge(0)),
            "z_order": pa.Column("int64"),
            "occluded": pa.Column("bool"),
            "group": pa.Column("int64", pa.Check.ge(0)),
            "track_id": pa.Column("Int64", pa.Check.ge(0), nullable=True),
            "rotation": pa.Column("float64", pa.Check.in_range(-1e6, 1e6)),
        },
        checks=[
            pa.Check.finite_unless_kind(columns=_BOUNDS, kinds=["tag"]),
            pa.Check.not_less_than(pairs=[["x_max", "x_min"], ["y_max", "y_min"]]),
        ],
        name="shapes",
        strict=True,
        description="One row per shape of an annotation export (microprep validate).",
    )
    return {"images": images, "shapes": shapes}


def write_schemas(folder: Path) -> list[Path]:
    """Write :func:`reference_schemas` as ``folder/images.yaml`` and ``folder/shapes.yaml``."""
    out = []
    for name, schema in reference_schemas().items():
        path = folder / f"{name}.yaml"
        path.write_text(str(schema.to_yaml()), encoding="utf-8")
        out.append(path)
    return out


@lru_cache(maxsize=16)
def _parse(text: str) -> pa.DataFrameSchema:
    schema = pa.DataFrameSchema.from_yaml(text)
    if not isinstance(schema, pa.DataFrameSchema):
        raise ValueError("not a pandera DataFrameSchema")
    return schema


def load_table_schema(table: str, folder: Path | None = None) -> pa.DataFrameSchema:
    """The pandera schema of ``table`` (``"images"`` or ``"shapes"``), read from its YAML file.

    Args:
        table: which table.
        folder: where ``<table>.yaml`` is; None: the shipped ``schemas/`` folder (source tree),
            else the package data ``microprep/schemas_data``.

    Raises:
        FileNotFoundError: no such schema file.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    name = f"{table}.yaml"
    if folder is not None:
        text = (folder / name).read_text(encoding="utf-8")
    elif (path := schema_path(name)) is not None:
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files("microprep").joinpath("schemas_data", name)
        if not resource.is_file():
            raise FileNotFoundError(f"table schema {name!r} not found (a broken install?)")
        text = resource.read_text(encoding="utf-8")
    return _parse(text)


def images_table(rows: dict[str, list[Any]]) -> pd.DataFrame:
    """The images table from column lists named as :data:`IMAGE_COLUMNS`."""
    return pd.DataFrame(
        {
            "name": pd.Series(rows["name"], dtype="str"),
            "width": np.asarray(rows["width"], dtype=np.int64),
            "height": np.asarray(rows["height"], dtype=np.int64),
            "frame": pd.array(rows["frame"], dtype="Int64"),
            "subset": pd.Series(rows["subset"], dtype="str"),
            "n_shapes": np.asarray(rows["n_shapes"], dtype=np.int64),
            "file_exists": pd.array(rows["file_exists"], dtype="boolean"),
            "file_width": pd.array(rows["file_width"], dtype="Int64"),
            "file_height": pd.array(rows["file_height"], dtype="Int64"),
        }
    )


def shape_columns(batch: Batch, m: Measures) -> dict[str, Any]:
    """The shapes-table columns of one batch (arrays and lists, see :data:`SHAPE_COLUMNS`)."""
    shapes = batch.shapes
    n = len(shapes)
    return {
        "image": batch.names,
        "order": np.fromiter((s.order for s in shapes), np.int64, n),
        "label": [s.label for s in shapes],
        "kind": m.kinds.tolist(),
        **{c: m.bounds[:, k] for k, c in enumerate(_BOUNDS)},
        "area": m.area,
        "n_vertices": m.n_vertices,
        "z_order": np.fromiter((s.z_order for s in shapes), np.int64, n),
        "occluded": np.fromiter((s.occluded for s in shapes), np.bool_, n),
        "group": np.fromiter((s.group for s in shapes), np.int64, n),
        "track_id": [s.track_id for s in shapes],
        "rotation": m.rotation,
    }


def shapes_table(parts: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The shapes table from the batches' :func:`shape_columns`, concatenated."""
    data: dict[str, Any] = {}
    for c in SHAPE_COLUMNS:
        values = [p[c] for p in parts]
        if c in ("image", "label", "kind", "track_id"):
            data[c] = [v for chunk in values for v in chunk]
        else:
            data[c] = np.concatenate(values) if values else np.zeros(0)
    dtypes = {"image": "str", "label": "str", "kind": "str", "track_id": "Int64", "order": "int64"}
    dtypes |= {"n_vertices": "int64", "z_order": "int64", "group": "int64", "occluded": "bool"}
    return pd.DataFrame({c: pd.Series(data[c], dtype=dtypes.get(c, "float64")) for c in data})


def _where(table: str, row: dict[str, Any] | None) -> tuple[str | None, int | None, str | None]:
    if row is None:
        return None, None, None
    if table == "images":
        name = row.get("name")
        return (None if name is None else str(name)), None, None
    image, order, label = row.get("image"), row.get("order"), row.get("label")
    return (
        None if image is None else str(image),
        None if order is None or pd.isna(order) else int(order),
        None if label is None else str(label),
    )


def _row(df: pd.DataFrame, index: Any) -> dict[str, Any] | None:
    if index is None or (isinstance(index, float) and math.isnan(index)) or index not in df.index:
        return None
    return {str(k): v for k, v in df.loc[index].to_dict().items()}


def schema_findings(
    table: str,
    df: pd.DataFrame,
    schema: pa.DataFrameSchema,
    skip_rows: frozenset[int] = frozenset(),
    frames: Mapping[str, int] | None = None,
) -> list[Finding]:
    """Validate ``df`` with ``schema`` (``lazy=True``); one ``schema-<table>`` error per failure.

    Failures of a whole-row check are reported once per row; rows in ``skip_rows`` (shapes the
    geometry checks already report as errors) are not reported again. Messages are sentences
    (:func:`~microprep.validate.schema_messages.schema_message`); ``frames`` maps the image
    names of a video to their frame numbers, for messages naming the frame.
    """
    try:
        schema.validate(df, lazy=True)
        return []
    except SchemaErrors as exc:
        cases = exc.failure_cases
    except SchemaError as exc:
        cases = pd.DataFrame(
            [{"column": None, "check": str(exc.check), "failure_case": str(exc), "index": None}]
        )
    out: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()
    for case in cases.to_dict("records"):
        index = case.get("index")
        if index in skip_rows:
            continue
        row_check = case.get("schema_context") == "DataFrameSchema" and index is not None
        column = None if row_check else case.get("column")
        key = (case.get("check"), column, index)
        if key in seen:
            continue
        seen.add(key)
        row = _row(df, index)
        image, order, label = _where(table, row)
        value = None if row_check else case.get("failure_case")
        frame = None if frames is None or image is None else frames.get(image)
        message = schema_message(table, str(case.get("check")), column, value, row, frame=frame)
        out.append(
            Finding(
                "error", f"schema-{table}", message, image, order, label,
                {"column": column, "check": str(case.get("check")), "value": value, "row": index},
            )
        )  # fmt: skip
    return out
