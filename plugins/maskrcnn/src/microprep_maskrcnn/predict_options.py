"""The Mask R-CNN trainer's own ``prep predict`` options, as the JSON Schema its
``predict_schema()`` returns.

Torch-free: ``prep predict`` reads it through the entry point ``microprep.predict_options:
maskrcnn`` to build its options and help without importing the trainer (and torch).

Example:
    >>> sorted(PREDICT_SCHEMA["properties"])[0]
    'mask_threshold'
"""

from __future__ import annotations

from typing import Any

__all__ = ["PREDICT_SCHEMA"]

#: Mask R-CNN's own ``prep predict`` options.
PREDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score_threshold": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
            "description": "Keep instances scoring at least this (Mask R-CNN).",
        },
        "mask_threshold": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.5,
            "description": "Mask probability threshold (Mask R-CNN).",
        },
    },
}
