"""What :func:`microprep.validate.validate` finds: :class:`Finding`, :class:`Report`.

A finding has a severity (``error``, ``warning`` or ``info``), a stable ``code`` (the list is in
docs/validate.md), a one-line message, and where it is: the image name, the shape's
``Shape.order`` and its label, each None when it does not apply. ``details`` holds the numbers
behind the message (plain JSON values).

Example:
    >>> f = Finding("error", "zero-area", "box has zero area", image="a.png", shape=3)
    >>> r = Report(source="a.xml", format="cvat", findings=[f])
    >>> r.exit_code(strict=False), len(r.errors)
    (2, 1)
    >>> print(r.format_table().splitlines()[0])
    severity  code       image  shape  message
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

Severity = Literal["error", "warning", "info"]

#: Severities, most severe first (the order of the table).
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

#: Exit codes of :meth:`Report.exit_code`.
EXIT_CLEAN, EXIT_WARNINGS, EXIT_ERRORS = 0, 1, 2

_MAX_IMAGE_WIDTH = 40


def json_value(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars to Python, non-finite floats to None.

    Example:
        >>> json_value({"a": np.float64(1.5), "b": [np.int64(2), float("nan")]})
        {'a': 1.5, 'b': [2, None]}
    """
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One problem (or remark) about the export.

    Args:
        severity: ``"error"`` (the data is wrong: exit 2), ``"warning"`` (probably wrong: exit 1
            with ``--strict``) or ``"info"``.
        code: stable identifier, e.g. ``"polygon-self-intersection"`` (see docs/validate.md).
        message: one readable line.
        image: the image name, or None for findings about the whole export.
        shape: the shape's ``Shape.order``, or None.
        label: the label concerned, or None.
        details: the numbers behind the message, as plain JSON values.
    """

    severity: Severity
    code: str
    message: str
    image: str | None = None
    shape: int | None = None
    label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object (all keys present, ``None`` where unset)."""
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "image": self.image,
            "shape": self.shape,
            "label": self.label,
            "details": json_value(self.details),
        }


def _sort_key(finding: Finding) -> tuple[int, str, str, int]:
    shape = -1 if finding.shape is None else finding.shape
    return (SEVERITIES.index(finding.severity), finding.code, finding.image or "", shape)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


@dataclass
class Report:
    """The result of :func:`~microprep.validate.validate`.

    ``images`` and ``shapes`` are the tables described in docs/validate.md (one row per image,
    one per shape). ``repairs`` lists what :func:`~microprep.validate.repair` changed when the
    caller stores its result here (``validate`` leaves it empty).
    """

    source: Path | str
    format: str
    findings: list[Finding] = field(default_factory=list)
    images: pd.DataFrame = field(default_factory=pd.DataFrame)
    shapes: pd.DataFrame = field(default_factory=pd.DataFrame)
    repairs: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings of severity ``warning``."""
        return [f for f in self.findings if f.severity == "warning"]

    def exit_code(self, strict: bool = False) -> int:
        """2 when there are errors; 1 when there are warnings and ``strict``; else 0."""
        if self.errors:
            return EXIT_ERRORS
        if strict and self.warnings:
            return EXIT_WARNINGS
        return EXIT_CLEAN

    def counts(self) -> dict[str, dict[str, Any]]:
        """``{code: {"severity": ..., "count": n}}`` over the findings, most severe first."""
        counter = Counter((f.severity, f.code) for f in self.findings)
        ordered = sorted(counter, key=lambda k: (SEVERITIES.index(k[0]), k[1]))
        return {code: {"severity": sev, "count": counter[sev, code]} for sev, code in ordered}

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data: source, format, summary, findings and repairs.

        Example:
            >>> Report(source="a.xml", format="cvat").to_json()["summary"]["errors"]
            0
        """
        by_severity = Counter(f.severity for f in self.findings)
        return {
            "source": str(self.source),
            "format": self.format,
            "summary": {
                "images": len(self.images),
                "shapes": len(self.shapes),
                "errors": by_severity["error"],
                "warnings": by_severity["warning"],
                "info": by_severity["info"],
                "codes": self.counts(),
            },
            "findings": [f.to_json() for f in sorted(self.findings, key=_sort_key)],
            "repairs": [f.to_json() for f in self.repairs],
        }

    def format_table(
        self,
        *,
        max_per_code: int | None = None,
        style: Callable[[str, Severity], str] | None = None,
    ) -> str:
        """An aligned plain-text table, most severe first, then the counts per code.

        Args:
            max_per_code: show at most this many rows of each code (None: all); the rest are
                counted in a ``... N more`` line.
            style: applied to each padded severity cell (the CLI colours it); None: plain text.

        Returns:
            The table as one string (no trailing newline); ``"no findings"`` when clean.
        """
        rows: list[tuple[Severity, str, str, str, str]] = []
        hidden: Counter[str] = Counter()
        shown: Counter[str] = Counter()
        for f in sorted(self.findings, key=_sort_key):
            if max_per_code is not None and shown[f.code] >= max_per_code:
                hidden[f.code] += 1
                continue
            shown[f.code] += 1
            image = _short(f.image, _MAX_IMAGE_WIDTH) if f.image is not None else "-"
            shape = "-" if f.shape is None else str(f.shape)
            rows.append((f.severity, f.code, image, shape, f.message))
        lines = _table(rows, style) if rows else ["no findings"]
        for code, n in hidden.items():
            lines.append(f"... {n} more {code} finding(s) not shown")
        if self.repairs:
            lines.append("")
            lines.append(f"repairs ({len(self.repairs)}):")
            lines.extend(
                f"  {f.code}  {f.image or '-'}  {'-' if f.shape is None else f.shape}  {f.message}"
                for f in self.repairs
            )
        counts = self.counts()
        if counts:
            lines.append("")
            width = max(len(code) for code in counts)
            lines.append(f"{'code':<{width}}  {'severity':<8}  {'count':>6}")
            lines.extend(
                f"{code:<{width}}  {c['severity']:<8}  {c['count']:>6}"
                for code, c in counts.items()
            )
        by_severity = Counter(f.severity for f in self.findings)
        lines.append(
            f"{by_severity['error']} error(s), {by_severity['warning']} warning(s), "
            f"{by_severity['info']} info"
        )
        return "\n".join(lines)


def _table(
    rows: list[tuple[Severity, str, str, str, str]],
    style: Callable[[str, Severity], str] | None,
) -> list[str]:
    header = ("severity", "code", "image", "shape", "message")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    out = [
        f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:<{widths[2]}}  "
        f"{header[3]:>{widths[3]}}  {header[4]}"
    ]
    for sev, code, image, shape, message in rows:
        cell = f"{sev:<{widths[0]}}"
        if style is not None:
            cell = style(cell, sev)
        out.append(
            f"{cell}  {code:<{widths[1]}}  {image:<{widths[2]}}  {shape:>{widths[3]}}  {message}"
        )
    return out
