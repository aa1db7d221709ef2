"""Labelbox classifications to ``Shape.attributes``: ``{name: answer}``, strings only.

Classifications are descriptions, never a reason to refuse an export: every kind Labelbox
writes is read, and what cannot be read is counted in one warning.

A classification has a name (``name``, else ``title``, else ``value``) and one answer:

* radio (v2 ``radio_answer``; v1 and NDJSON import ``answer``): an object whose name is the value;
* checklist (v2 ``checklist_answers``; v1 ``answers``, or ``answer`` as a list; dropdown): the
  answers' names joined by ``","`` in the order written;
* free text (v2 ``text_answer.content``; v1 ``answer`` as a string): the text.

An answer that is a number or ``true``/``false`` is written as JSON (``3``, ``true``). A
classification nested in an answer (or in a checklist answer) is added as ``"outer/inner"``
(deeper ones ``"a/b/c"``). Classifications without a name or an answer, and values that are none
of the above, are counted in ``unanswered`` (the first place is kept for the warning).

Example:
    >>> c = Classifications("e.ndjson")
    >>> c.read([{"name": "q", "radio_answer": {"name": "yes"}}], ("c",), 1)
    {'q': 'yes'}
    >>> c.read([{"title": "tags", "answer": [{"title": "a"}, {"title": "b"}]}], ("c",), None)
    {'tags': 'a,b'}
"""

from __future__ import annotations

from typing import Any, Final

from microprep.readers.jsonsafe import json_path
from microprep.readers.labelbox.checks import Checker, JsonPath

#: Keys tried in order for the name of a classification or an answer.
NAME_KEYS: Final = ("name", "title", "value")

#: Keys that may hold a classification's answer, in the order they are tried.
ANSWER_KEYS: Final = ("radio_answer", "checklist_answers", "text_answer", "answer", "answers")


class Classifications(Checker):
    """Reads classifications; ``unanswered`` counts those without a usable name or answer."""

    def __init__(self, file: str) -> None:
        super().__init__(file)
        self.unanswered = 0
        #: where the first classification that could not be read is (for the warning)
        self.first_unanswered: str | None = None

    def _skip(self, line: int | None, path: JsonPath) -> None:
        self.unanswered += 1
        if self.first_unanswered is None:
            at = "" if line is None else f"line {line}, "
            self.first_unanswered = at + json_path(path)

    def read(
        self,
        items: Any,
        path: JsonPath,
        line: int | None,
        out: dict[str, str] | None = None,
        prefix: str = "",
    ) -> dict[str, str]:
        """Classifications as ``{name: value}``, added to ``out`` (a new dict when None).

        ``items`` is a list of classification objects (one object alone is read as a list of
        one). Nested classifications are added as ``"outer/inner"``. Nothing here raises.
        """
        if out is None:
            out = {}
        if items is None or items == []:
            return out
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            self._skip(line, path)
            return out
        for i, item in enumerate(items):
            here: JsonPath = (*path, i)
            name = _name(item) if isinstance(item, dict) else None
            if name is None:
                self._skip(line, here)
                continue
            key = prefix + name
            value = self._answer(item, key, line, here, out)
            if value is None:
                self._skip(line, here)
            else:
                out[key] = value
        return out

    def _answer(
        self, item: dict[str, Any], key: str, line: int | None, path: JsonPath, out: dict[str, str]
    ) -> str | None:
        """The value of one classification (nested ones added to ``out``), None when none."""
        for field in ANSWER_KEYS:
            answer = item.get(field)
            if answer is None:
                continue
            return self._value(answer, key, line, (*path, field), out)
        return None

    def _value(
        self, answer: Any, key: str, line: int | None, path: JsonPath, out: dict[str, str]
    ) -> str | None:
        if isinstance(answer, str):
            return answer
        if isinstance(answer, bool | int | float):
            return _json(answer)
        if isinstance(answer, dict):
            content = answer.get("content")
            if isinstance(content, str) and _name(answer) is None:
                return content  # a text answer: {"content": "..."}
            nested = answer.get("classifications")
            self.read(nested, (*path, "classifications"), line, out, key + "/")
            return _name(answer)
        if isinstance(answer, list):
            chosen: list[str] = []
            for j, each in enumerate(answer):
                here: JsonPath = (*path, j)
                if isinstance(each, dict):
                    self.read(
                        each.get("classifications"),
                        (*here, "classifications"),
                        line,
                        out,
                        key + "/",
                    )
                    name = _name(each)
                elif isinstance(each, str | bool | int | float):
                    name = each if isinstance(each, str) else _json(each)
                else:
                    name = None
                if name is None:
                    self._skip(line, here)
                else:
                    chosen.append(name)
            return ",".join(chosen)
        return None


def _name(item: dict[str, Any]) -> str | None:
    """The first non-empty string among :data:`NAME_KEYS` (numbers written as JSON)."""
    for key in NAME_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, bool | int | float):
            return _json(value)
    return None


def _json(value: bool | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
