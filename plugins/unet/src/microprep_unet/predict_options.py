"""The U-Net trainer's own ``prep predict`` options, as the JSON Schema its
``predict_schema()`` returns.

Torch-free: ``prep predict`` reads it through the entry point ``microprep.predict_options:
unet`` to build its options and help without importing the trainer (and torch).

Example:
    >>> sorted(PREDICT_SCHEMA["properties"])[0]
    'probabilities'
"""

from __future__ import annotations

from typing import Any

__all__ = ["PREDICT_SCHEMA"]

#: The U-Net's own ``prep predict`` options.
PREDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "probabilities": {
            "type": "boolean",
            "default": False,
            "description": "Also store class probabilities (U-Net).",
        }
    },
}
