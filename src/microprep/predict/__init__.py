"""Prediction on whole images and volumes: tiling, blending, inputs and the prediction store.

* :func:`predict_tiled`, :func:`tile_origins`, :func:`gaussian_weights` (``tiles.py``): run a
  model on overlapping tiles and blend them, slab by slab, in bounded memory.
* :func:`iter_inputs` (``inputs.py``): the images of a dataset store, a folder, a file or a
  TIFF stack.
* :func:`predict_semantic` (``semantic.py``): class maps of every input into ``PRED.zarr``
  (:class:`PredictionWriter`, ``write.py``) plus overlay PNGs.

The model is any callable ``(B, C, *window)`` float32 -> ``(B, K, *window)`` probabilities, so
this package needs numpy only; torch models are wrapped by the caller (``docs/predict.md``).

Example:
    >>> import numpy as np
    >>> tile_origins((5, 9), window=4, overlap=0.25).tolist()
    [[0, 0], [0, 3], [0, 5], [1, 0], [1, 3], [1, 5]]
"""

from __future__ import annotations

from microprep.predict.inputs import PredictionInput, iter_inputs
from microprep.predict.scaling import channels_first, unit_range, window_for
from microprep.predict.semantic import PredictionSummary, overlays_path, predict_semantic
from microprep.predict.tiles import gaussian_weights, predict_tiled, tile_origins
from microprep.predict.write import PREDICTION_KEY, PredictionWriter, read_prediction_attrs

__all__ = [
    "PREDICTION_KEY",
    "PredictionInput",
    "PredictionSummary",
    "PredictionWriter",
    "channels_first",
    "gaussian_weights",
    "iter_inputs",
    "overlays_path",
    "predict_semantic",
    "predict_tiled",
    "read_prediction_attrs",
    "tile_origins",
    "unit_range",
    "window_for",
]
