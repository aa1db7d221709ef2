"""Which loss terms to combine, and with what weights, from a config value (no torch).

Example:
    >>> parse_loss("ce + 0.5*dice")
    {'ce': 1.0, 'dice': 0.5}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from microprep.errors import UsageError

__all__ = ["LOSS_TERMS", "check_terms", "parse_loss"]

#: Loss term names: ``ce`` (cross-entropy), ``dice`` (soft Dice), ``jaccard2``.
LOSS_TERMS: tuple[str, ...] = ("ce", "dice", "jaccard2")

_TERM = re.compile(r"^\s*(?:(?P<w>[0-9.eE+-]+)\s*\*\s*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*$")


def check_terms(terms: Mapping[str, float], where: str = "loss") -> dict[str, float]:
    """Validate ``{name: weight}`` (names of :data:`LOSS_TERMS`, case-insensitive, weights finite
    and >= 0, one above 0); return it with lower-case names and float weights.

    Raises:
        UsageError: naming ``where`` and the offending term.

    Example:
        >>> check_terms({"CE": 1, "dice": 0.5})
        {'ce': 1.0, 'dice': 0.5}
    """
    out: dict[str, float] = {}
    for name, value in terms.items():
        key = str(name).strip().lower()
        if key not in LOSS_TERMS:
            raise UsageError(f"{where}: unknown loss term {name!r}; use {', '.join(LOSS_TERMS)}")
        if key in out:
            raise UsageError(f"{where}: loss term {key!r} given twice")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{where}: weight of {key!r} must be a number, not {value!r}")
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"{where}: weight of {key!r} must be finite and >= 0, not {value}")
        out[key] = float(value)
    if not any(out.values()):
        raise UsageError(f"{where}: no loss term with a weight above 0")
    return out


def parse_loss(spec: str | Mapping[str, float] | Sequence[str]) -> dict[str, float]:
    """Loss terms and their weights from a config value.

    Accepted forms: a mapping ``{"ce": 1.0, "dice": 0.5}``; a string of ``+``-separated terms,
    each ``name`` (weight 1) or ``weight*name`` (``"ce+dice"``, ``"ce + 0.5*jaccard2"``); or a
    list of names. Names (case-insensitive) are those of :data:`LOSS_TERMS`.

    Returns:
        ``{name: weight}`` in the given order, weights finite, >= 0, at least one > 0.

    Raises:
        UsageError: an unknown or repeated name, a bad weight, or an empty spec.

    Example:
        >>> parse_loss("ce + 0.5*dice")
        {'ce': 1.0, 'dice': 0.5}
        >>> parse_loss({"jaccard2": 2})
        {'jaccard2': 2.0}
    """
    if isinstance(spec, Mapping):
        return check_terms(spec, "loss")
    if isinstance(spec, str):
        pairs: list[tuple[str, float]] = []
        for part in spec.split("+") if spec.strip() else []:
            match = _TERM.match(part)
            if match is None:
                raise UsageError(f"loss {spec!r}: cannot read term {part.strip()!r}")
            try:
                weight = float(match["w"]) if match["w"] else 1.0
            except ValueError:
                raise UsageError(f"loss {spec!r}: bad weight {match['w']!r}") from None
            pairs.append((match["name"], weight))
        if not pairs:
            raise UsageError("loss: empty loss specification")
        names = [n.lower() for n, _ in pairs]
        if len(set(names)) != len(names):
            raise UsageError(f"loss {spec!r}: a term is given twice")
        return check_terms(dict(pairs), f"loss {spec!r}")
    if isinstance(spec, Sequence) and all(isinstance(s, str) for s in spec):
        names = [s.lower() for s in spec]
        if len(set(names)) != len(names):
            raise UsageError(f"loss {list(spec)!r}: a term is given twice")
        return check_terms(dict.fromkeys(spec, 1.0), f"loss {list(spec)!r}")
    raise UsageError(f"loss: expected a mapping, a string or a list of names, not {spec!r}")
