"""Labelbox classifications to ``Shape.attributes``: ``{name: answer}``, strings only.

A classification has a ``name`` (else ``title``, else ``value``) and one answer: a radio
answer (``radio_answer`` / ``answer``: an object whose name is the value, or a plain string), a
checklist (``checklist_answers`` / ``answers``: the answers' names joined by ``","``) or a text
answer (``text_answer.content``). Classifications nested in an answer are added as
``"outer/inner"``. Classifications without a name or an answer are counted, not kept.

Example:
    >>> c = Classifications("e.ndjson")
    >>> c.read([{"name": "q", "radio_answer": {"name": "yes"}}], ("c",), 1)
    {'q': 'yes'}
"""

from __future__ import annotations

from typing import Any, Final

from microprep.readers.labelbox.checks import Checker, JsonPath, describe

#: Keys tried in order for the name of a classification or an answer.
NAME_KEYS: Final = ("name", "title", "value")


class Classifications(Checker):
    """Reads classifications; ``unanswered`` counts those without a usable name or answer."""

    def __init__(self, file: str) -> None:
        super().__init__(file)
        self.unanswered = 0

    def read(
        self,
        items: Any,
        path: JsonPath,
        line: int | None,
        out: dict[str, str] | None = None,
        prefix: str = "",
    ) -> dict[str, str]:
        """Classifications as ``{name: value}``, added to ``out`` (a new dict when None).

        The value is the radio answer's name, the text answer, or the checklist answers' names
        joined by ``","``. Classifications nested in an answer are added as ``"outer/inner"``.
        Classifications without a usable answer are counted in ``unanswered``.
        """
        if out is None:
            out = {}
        if items is None:
            return out
        if not isinstance(items, list):
            raise self.format_error(
                f"expected a list of classifications, got {describe(items)}", line, path
            )
        for i, item in enumerate(items):
            here = (*path, i)
            if not isinstance(item, dict):
                raise self.format_error(
                    f"expected a classification object, got {describe(item)}", line, here
                )
            name = self._name(item, line, here)
            if name is None:
                self.unanswered += 1
                continue
            key = prefix + name
            value = self._answer(item, key, line, here, out)
            if value is None:
                self.unanswered += 1
            else:
                out[key] = value
        return out

    def _name(self, item: dict[str, Any], line: int | None, path: JsonPath) -> str | None:
        found = self.first_string(item, NAME_KEYS, line, path)
        return None if found is None else found[0]

    def _answer(
        self, item: dict[str, Any], key: str, line: int | None, path: JsonPath, out: dict[str, str]
    ) -> str | None:
        for field in ("radio_answer", "answer"):
            answer = item.get(field)
            if isinstance(answer, str):
                return answer
            if isinstance(answer, dict):
                here = (*path, field)
                nested = answer.get("classifications")
                self.read(nested, (*here, "classifications"), line, out, key + "/")
                return self._name(answer, line, here)
            if answer is not None:
                raise self.format_error(
                    f"expected an answer object, got {describe(answer)}", line, (*path, field)
                )
        for field in ("checklist_answers", "answers"):
            answers = item.get(field)
            if answers is None:
                continue
            if not isinstance(answers, list):
                raise self.format_error(
                    f"expected a list of answers, got {describe(answers)}", line, (*path, field)
                )
            chosen: list[str] = []
            for j, answer in enumerate(answers):
                here = (*path, field, j)
                if not isinstance(answer, dict):
                    raise self.format_error(
                        f"expected an answer object, got {describe(answer)}", line, here
                    )
                nested = answer.get("classifications")
                self.read(nested, (*here, "classifications"), line, out, key + "/")
                name = self._name(answer, line, here)
                if name is not None:
                    chosen.append(name)
            return ",".join(chosen)
        text = item.get("text_answer")
        if text is None:
            return None
        if not isinstance(text, dict) or not isinstance(text.get("content", ""), str):
            raise self.format_error(
                f"expected {{'content': text}}, got {describe(text)}", line, (*path, "text_answer")
            )
        return str(text.get("content", ""))
