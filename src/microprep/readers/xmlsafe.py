"""Hardened, streaming XML parsing for the XML readers.

Annotation exports come from other people's machines, so an XML file is treated as hostile:

* Any ``<!DOCTYPE ...>`` is refused with :class:`~microprep.errors.UnsafeInputError` before the
  XML parser sees it (the bytes before the root element are scanned first), so no entity is ever
  expanded and no external DTD or local file is ever opened. The parser also runs with
  ``resolve_entities=False``, ``load_dtd=False`` and ``no_network=True``, and the document info is
  checked again at the root element.
* XInclude elements (namespace :data:`XINCLUDE_NS`) are refused; ``xinclude()`` is never called.
* ``huge_tree=False`` keeps libxml2's limits on text size and depth; on top of that the element
  depth is capped at :data:`MAX_DEPTH`.
* Malformed or truncated XML raises :class:`~microprep.errors.FormatError` with the line and
  column that libxml2 reports.

:func:`iter_root_children` streams the root's children one at a time and clears each one (and
its preceding siblings) once the caller is done with it, so memory stays bounded by the largest
child element.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = p.write_text("<annotations><version>1.1</version></annotations>")
    >>> [child.tag for child in iter_root_children(p, root_tag="annotations")]
    ['version']
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from lxml import etree

from microprep.errors import FormatError, InputError, UnsafeInputError

logger = logging.getLogger(__name__)

#: Deepest element nesting accepted (the root element is depth 1).
MAX_DEPTH = 64

#: The XInclude namespace; elements in it are refused.
XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
_XINCLUDE_PREFIXES = ("{" + XINCLUDE_NS + "}", "{http://www.w3.org/2003/XInclude}")

_DOCTYPE_MESSAGE = (
    "DOCTYPE declarations are not allowed (entities/external DTDs are a security risk)"
)
_CHUNK = 65536


def _pick_decoder(head: bytes) -> tuple[codecs.IncrementalDecoder, int]:
    """An incremental decoder for the file's encoding family and the number of BOM bytes."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        name, skip = ("utf-32-le" if head.startswith(codecs.BOM_UTF32_LE) else "utf-32-be"), 4
    elif head.startswith(codecs.BOM_UTF16_LE):
        name, skip = "utf-16-le", 2
    elif head.startswith(codecs.BOM_UTF16_BE):
        name, skip = "utf-16-be", 2
    elif head.startswith(codecs.BOM_UTF8):
        name, skip = "utf-8", 3
    elif head.startswith(b"<\x00\x00\x00"):
        name, skip = "utf-32-le", 0
    elif head.startswith(b"\x00\x00\x00<"):
        name, skip = "utf-32-be", 0
    elif head.startswith(b"<\x00"):
        name, skip = "utf-16-le", 0
    elif head.startswith(b"\x00<"):
        name, skip = "utf-16-be", 0
    else:
        # ASCII-compatible encodings: only the ASCII markup matters here.
        name, skip = "latin-1", 0
    return codecs.getincrementaldecoder(name)(errors="replace"), skip


class _PrologueReader:
    """Reads the text before the root element chunk by chunk, keeping little in memory."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        head = stream.read(4)
        self._decoder, skip = _pick_decoder(head)
        self.buf = self._decoder.decode(head[skip:])
        self.pos = 0
        self.lines_dropped = 0
        self._eof = False

    def more(self) -> bool:
        """Append the next chunk; False at the end of the file."""
        if self._eof:
            return False
        chunk = self._stream.read(_CHUNK)
        self._eof = not chunk
        text = self._decoder.decode(chunk, final=self._eof)
        self.buf += text
        return bool(chunk or text)

    def drop(self, upto: int) -> None:
        """Forget the text before ``upto`` (counting its line breaks)."""
        self.lines_dropped += self.buf.count("\n", 0, upto)
        self.buf = self.buf[upto:]
        self.pos -= upto

    def find(self, token: str) -> int:
        """Index of ``token`` at or after ``pos``, reading on as needed; -1 if never found."""
        start = self.pos
        while True:
            idx = self.buf.find(token, start)
            if idx >= 0:
                return idx
            self.drop(max(start, len(self.buf) - len(token) + 1))
            self.pos = start = 0
            if not self.more():
                return -1

    def line(self) -> int:
        return self.lines_dropped + self.buf.count("\n", 0, self.pos) + 1


def check_prologue(stream: BinaryIO, *, file: str | Path) -> None:
    """Refuse a ``<!DOCTYPE`` (or any other ``<!`` declaration) before the root element.

    Reads ``stream`` from its current position up to the root element's ``<`` (XML declaration,
    comments and processing instructions are skipped). Anything it cannot make sense of is left
    for the XML parser to report.

    Raises:
        UnsafeInputError: a DOCTYPE (internal subset, external DTD, entities) was found.
    """
    reader = _PrologueReader(stream)
    while True:
        while True:
            reader.drop(reader.pos)
            rest = reader.buf[reader.pos :]
            reader.pos += len(rest) - len(rest.lstrip())
            if reader.pos < len(reader.buf) or not reader.more():
                break
        while len(reader.buf) - reader.pos < 4 and reader.more():
            pass
        rest = reader.buf[reader.pos : reader.pos + 4]
        if rest.startswith("<?"):
            reader.pos += 2
            end = reader.find("?>")
            if end < 0:
                return
            reader.pos = end + 2
        elif rest.startswith("<!--"):
            reader.pos += 4
            end = reader.find("-->")
            if end < 0:
                return
            reader.pos = end + 3
        elif rest.startswith("<!"):
            raise UnsafeInputError(_DOCTYPE_MESSAGE, file=file, line=reader.line())
        else:
            return


_SNIFF_SKIP = re.compile(
    r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]*\[.*?\])?[^>]*>",
    re.DOTALL,
)
_SNIFF_START = re.compile(r"<([A-Za-z_][\w.\-]*(?::[\w.\-]+)?)")


def sniff_root(head: bytes) -> tuple[str | None, str]:
    """The root element's name in the first bytes of a file, and the text after its ``<``.

    Never raises; returns ``(None, "")`` when the bytes do not look like XML.

    Example:
        >>> sniff_root(b'<?xml version="1.0"?>\\n<annotations><meta/>')[0]
        'annotations'
    """
    decoder, skip = _pick_decoder(head[:4])
    text = decoder.decode(head[skip:], final=False)
    pos = 0
    while True:
        match = _SNIFF_SKIP.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
    start = _SNIFF_START.match(text, pos)
    if start is None:
        return None, ""
    return start.group(1), text[start.end() :]


def line_of(elem: etree._Element) -> int | None:
    """The element's 1-based source line, or None when unknown."""
    line: object = elem.sourceline
    return line if isinstance(line, int) else None


def _syntax_error(exc: etree.XMLSyntaxError, file: str, last: etree._Element | None) -> FormatError:
    """A FormatError carrying libxml2's message, line and column.

    ``last`` is the last element whose start tag was read; naming it helps when libxml2 reports
    the end of its buffer (huge attribute values) rather than the offending element.
    """
    message = str(exc.msg or "malformed XML")
    line, column = exc.position if exc.position else (0, 0)
    if not line or line <= 0:
        # With resolve_entities=False some errors surface as a bare "no element found"; the
        # parser's log has the real one (the most recent entry).
        entries = [
            entry
            for entry in cast(Iterable[Any], exc.error_log)
            if entry.level >= etree.ErrorLevels.ERROR
        ]
        if entries:
            message, line, column = entries[-1].message, entries[-1].line, entries[-1].column
    message = " ".join(re.sub(r",?\s*line \d+, column \d+\s*$", "", message).split())
    if last is not None:
        message += f" (the last element read starts at line {line_of(last)}: <{last.tag}>)"
    return FormatError(
        f"malformed or truncated XML: {message}",
        file=file,
        line=line if line and line > 0 else None,
        column=column if column and column > 0 and line and line > 0 else None,
    )


def _check_root(elem: etree._Element, *, root_tag: str, file: str) -> None:
    docinfo = elem.getroottree().docinfo
    if (
        getattr(docinfo, "doctype", "")
        or docinfo.internalDTD is not None
        or getattr(docinfo, "system_url", None)
    ):
        raise UnsafeInputError(_DOCTYPE_MESSAGE, file=file, line=line_of(elem))
    if elem.tag != root_tag:
        raise FormatError(
            f"the root element is <{elem.tag}>, expected <{root_tag}>",
            file=file,
            line=line_of(elem),
        )


class _WalkState:
    """Depth, the last start tag and the checks run on every start tag."""

    def __init__(self, *, root_tag: str, file: str, max_depth: int) -> None:
        self.root_tag = root_tag
        self.file = file
        self.max_depth = max_depth
        self.depth = 0
        self.last: etree._Element | None = None

    def start(self, elem: etree._Element) -> None:
        """Account for a start tag; raise on a wrong root, XInclude or too deep nesting."""
        self.depth += 1
        self.last = elem
        tag = elem.tag
        if self.depth == 1:
            _check_root(elem, root_tag=self.root_tag, file=self.file)
        if isinstance(tag, str) and tag.startswith(_XINCLUDE_PREFIXES):
            raise UnsafeInputError(
                "XInclude elements are not allowed (they can read other files)",
                file=self.file,
                line=line_of(elem),
            )
        if self.depth > self.max_depth:
            raise FormatError(
                f"elements are nested deeper than {self.max_depth} levels",
                file=self.file,
                line=line_of(elem),
                where=f"<{tag}>",
            )

    def end(self) -> None:
        self.depth -= 1


def _read(parser: etree.XMLPullParser) -> Iterator[tuple[str, Any]]:
    # only "start" and "end" events are asked for, so every item is an element
    return cast(Iterator[tuple[str, Any]], iter(parser.read_events()))


def _pull_events(stream: BinaryIO, state: _WalkState) -> Iterator[tuple[str, Any]]:
    """(event, element) pairs from a pull parser fed in chunks.

    A pull parser is used rather than ``iterparse`` so that, when libxml2 stops on an error, the
    start tags it read before the error can still be checked: libxml2 may parse a whole chunk
    before it reports its own limit (depth 256, 10 MB attribute values), and our own checks
    (depth, XInclude) and the "last element read" hint give the more useful message. Events
    after an error only update ``state``; they are never handed to the caller.
    """
    parser = etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    while True:
        chunk = stream.read(_CHUNK)
        try:
            if chunk:
                parser.feed(chunk)
            else:
                parser.close()
        except etree.XMLSyntaxError:
            for event, elem in _read(parser):
                if event == "start":
                    state.start(elem)
                else:
                    state.end()
            raise
        yield from _read(parser)
        if not chunk:
            return


def iter_root_children(
    path: str | Path,
    *,
    root_tag: str,
    max_depth: int = MAX_DEPTH,
    opener: Callable[[], BinaryIO] | None = None,
) -> Iterator[etree._Element]:
    """Yield each complete child element of the root, in file order, then free it.

    Args:
        path: the XML file (with ``opener``: the name errors give the stream).
        root_tag: the required name of the root element.
        max_depth: deepest element nesting accepted (root is depth 1).
        opener: opens the XML as a seekable binary stream (a member of an archive, say);
            None opens ``path``.

    Yields:
        Each child of the root once its end tag was read, with its whole subtree. The element is
        cleared when the caller asks for the next one, so do not keep references to it.

    Raises:
        UnsafeInputError: DOCTYPE or XInclude.
        FormatError: malformed XML, a wrong root element, or nesting deeper than ``max_depth``.
        InputError: the file cannot be opened or read.
    """
    file = str(path)
    try:
        stream = opener() if opener is not None else open(path, "rb")  # noqa: SIM115
    except FileNotFoundError as exc:
        raise InputError("file not found", file=file) from exc
    except IsADirectoryError as exc:
        raise InputError("is a folder, not a file", file=file) from exc
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror or exc}", file=file) from exc
    state = _WalkState(root_tag=root_tag, file=file, max_depth=max_depth)
    with stream:
        try:
            check_prologue(stream, file=file)
            stream.seek(0)
            for event, elem in _pull_events(stream, state):
                if event == "start":
                    state.start(elem)
                    continue
                state.end()
                if state.depth != 1:
                    continue
                yield elem
                elem.clear(keep_tail=False)
                parent = elem.getparent()
                if parent is not None:
                    while elem.getprevious() is not None:
                        del parent[0]
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc, file, state.last) from exc
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror or exc}", file=file) from exc
