"""AI clients' config files as text: read the servers, add or remove one, write text back.

Pure functions, text in and text out, for the three formats clients use:
strict JSON, JSONC (VS Code: ``//`` and ``/* */`` comments, trailing commas)
and TOML (Codex, through tomlkit so comments and layout survive).

Invariants this module owns:

* an edit changes the one entry it names and nothing else: every other key,
  server and setting reads back equal, in its order (checked on every edit by
  parsing the result again, so a layout tomlkit cannot edit in place is
  refused rather than written wrong);
* an edit of an existing entry sets the fields it is given where they are
  and keeps the entry's other keys (``env``, ``disabled``, a TOML
  ``[mcp_servers.NAME.env]`` table), dropping only those it is told to;
* a file that does not parse, whose servers are not where the client reads
  them, or whose JSON repeats a key in one object (a rewrite would keep only
  one), is refused with the file and, where it is known, the line
  (:class:`ConfigFileError`);
* JSONC comments are never dropped silently: a file that has them is read,
  but rewriting it is refused (:class:`CommentsWouldBeLostError`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Collection, Mapping
from typing import Any

import tomlkit
import tomlkit.exceptions
import tomlkit.items

from ..errors import ConflictError, InvalidInputError
from .clients import Format


class ConfigFileError(InvalidInputError):
    """A client's config file cannot be read as the client reads it.

    ``line`` is 1-based, or ``None`` where the parser does not know it.
    """

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.problem = problem
        self.line = line


class CommentsWouldBeLostError(ConflictError):
    """Rewriting a JSONC file would drop its comments, so it was refused."""


# -- text ------------------------------------------------------------------------------


def decode_text(data: bytes, path: str) -> str:
    """The text of a config file's bytes: UTF-8, a leading byte-order mark dropped.

    Raises:
        ConfigFileError: the bytes are not UTF-8 (naming the line).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(path, "not UTF-8 text", data.count(b"\n", 0, exc.start) + 1) from None


def encode_text(text: str, path: str) -> bytes:
    """The UTF-8 bytes to write for ``text``.

    Raises:
        ConfigFileError: the text holds a lone surrogate (from a ``\\ud800``
            escape in the file), which UTF-8 cannot hold.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        problem = "holds a lone surrogate escape, which cannot be written back"
        raise ConfigFileError(path, problem) from None


def strip_jsonc(text: str, path: str) -> tuple[str, bool]:
    """Blank out JSONC's comments and trailing commas, keeping every line and column.

    Returns the strict JSON text and whether there were comments. Strings are
    skipped whole, so ``"http://x"`` is not a comment.

    Raises:
        ConfigFileError: a ``/*`` comment is never closed.
    """
    out = list(text)
    comments = False
    comma: int | None = None  # a comma that is trailing if a closing bracket comes next
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == '"':
            i = _string_end(text, i)
            comma = None
            continue
        if text.startswith("//", i) or text.startswith("/*", i):
            comments = True
            if text[i + 1] == "/":
                close = text.find("\n", i)
                close = end if close < 0 else close
            else:
                close = text.find("*/", i + 2)
                if close < 0:
                    line = text.count("\n", 0, i) + 1
                    raise ConfigFileError(
                        path, "not valid JSON (a /* comment is never closed)", line
                    )
                close += 2
            for j in range(i, close):
                if out[j] not in "\r\n":
                    out[j] = " "
            i = close
            continue
        if char == ",":
            comma = i
        elif char in "}]":
            if comma is not None:
                out[comma] = " "
            comma = None
        elif not char.isspace():
            comma = None
        i += 1
    return "".join(out), comments


def _string_end(text: str, start: int) -> int:
    """The index just past the JSON string opening at ``start`` (or the line's end)."""
    i = start + 1
    while i < len(text) and text[i] not in '"\n':
        i += 2 if text[i] == "\\" else 1
    return i + 1


# -- reading ---------------------------------------------------------------------------


def servers_in(fmt: Format, text: str, key: str, path: str) -> dict[str, Any]:
    """The servers a config file registers, as plain values (``{}`` without the key).

    Raises:
        ConfigFileError: the file does not parse, its top level is not an
            object (a table), or ``key`` holds something else.
    """
    plain = _plain(fmt, text, path)
    servers = plain.get(key)
    if servers is None and key not in plain:
        return {}
    if not isinstance(servers, dict):
        raise ConfigFileError(path, f"{key!r} is {_kind(servers, fmt)}, not {_object(fmt)}")
    return servers


def entry_in(fmt: Format, text: str, key: str, name: str, path: str) -> dict[str, Any] | None:
    """The entry registered as ``name``, or ``None``.

    Raises:
        ConfigFileError: as :func:`servers_in`, or the entry is not an object.
    """
    servers = servers_in(fmt, text, key, path)
    if name not in servers:
        return None
    entry = servers[name]
    if not isinstance(entry, dict):
        raise ConfigFileError(path, f"{key}.{name} is {_kind(entry, fmt)}, not {_object(fmt)}")
    return entry


def has_comments(fmt: Format, text: str, path: str) -> bool:
    """Whether rewriting ``text`` would drop comments (only JSONC can lose them)."""
    return fmt == "jsonc" and strip_jsonc(text, path)[1]


# -- editing ---------------------------------------------------------------------------


def with_entry(
    fmt: Format,
    text: str | None,
    key: str,
    name: str,
    fields: Mapping[str, Any],
    path: str,
    *,
    drop: Collection[str] = (),
) -> str:
    """``text`` with ``fields`` set in the entry ``name``, which is added if missing.

    ``None`` is a new file. The servers key is added after everything else if
    it is missing. In an existing entry each field is set where it is (a new
    one goes last), the keys in ``drop`` are removed, and every other key
    stays as it was.

    Raises:
        ConfigFileError: as :func:`entry_in`, or the edit would change more.
        CommentsWouldBeLostError: ``text`` is JSONC with comments.
    """
    original = "" if text is None else text
    current = entry_in(fmt, original, key, name, path)  # the file is as clients read it
    _refuse_comments(fmt, original, path)
    if fmt == "toml":
        edited = _toml_with(original, key, name, fields, drop, path)
    else:
        doc = _json_document(original, fmt, path)
        servers = doc.setdefault(key, {})
        servers[name] = merged_entry(servers.get(name), fields, drop)
        edited = _dump_json(doc, path)
    expected = copy.deepcopy(_plain(fmt, original, path))
    expected.setdefault(key, {})[name] = merged_entry(current, fields, drop)
    _check_edit(fmt, edited, expected, path)
    return edited


def merged_entry(
    current: Mapping[str, Any] | None, fields: Mapping[str, Any], drop: Collection[str] = ()
) -> dict[str, Any]:
    """``current`` without the keys in ``drop``, with ``fields`` set (existing keys in place)."""
    merged = {k: v for k, v in (current or {}).items() if k not in drop}
    merged.update(fields)
    return merged


def without_entry(fmt: Format, text: str, key: str, name: str, path: str) -> str:
    """``text`` without the entry ``name`` (the servers key stays, maybe empty).

    Raises:
        ConfigFileError: as :func:`entry_in`, there is no such entry, or the
            edit would change more.
        CommentsWouldBeLostError: ``text`` is JSONC with comments.
    """
    if entry_in(fmt, text, key, name, path) is None:
        raise ConfigFileError(path, f"has no server {name!r} under {key!r}")
    _refuse_comments(fmt, text, path)
    if fmt == "toml":
        doc = _toml_document(text, path)
        del doc[key][name]
        edited = _same_ending(text, tomlkit.dumps(doc))
    else:
        document = _json_document(text, fmt, path)
        del document[key][name]
        edited = _dump_json(document, path)
    expected = copy.deepcopy(_plain(fmt, text, path))
    del expected[key][name]
    if fmt == "toml" and not expected[key] and key not in _plain(fmt, edited, path):
        del expected[key]  # a [key] that held only sub-tables leaves no trace once they go
    _check_edit(fmt, edited, expected, path)
    return edited


def _refuse_comments(fmt: Format, text: str, path: str) -> None:
    if has_comments(fmt, text, path):
        raise CommentsWouldBeLostError(
            f"{path} has comments, which rewriting it would drop; edit it by hand"
            " (or remove the comments and run this again)"
        )


def _check_edit(fmt: Format, edited: str, expected: dict[str, Any], path: str) -> None:
    """Refuse an edit that reads back as anything but ``expected``."""
    if _plain(fmt, edited, path) != expected:
        raise ConfigFileError(
            path, "its layout cannot be edited without changing other settings; edit it by hand"
        )


# -- JSON ------------------------------------------------------------------------------


def _json_document(text: str, fmt: Format, path: str) -> dict[str, Any]:
    """The top-level object of a JSON (or JSONC) file; an empty file is ``{}``."""
    if fmt == "jsonc":
        text = strip_jsonc(text, path)[0]
    if not text.strip():
        return {}
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except _RepeatedKeyError:
        key, line = repeated_key(text) or ("?", None)
        problem = f"the key {key!r} appears twice in one object, and a rewrite would keep only one"
        raise ConfigFileError(path, problem + "; remove one by hand", line) from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(path, f"not valid JSON ({exc.msg})", exc.lineno) from None
    except ValueError as exc:  # NaN or Infinity: JavaScript's JSON cannot read them either
        raise ConfigFileError(path, f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigFileError(path, f"the top level is {_kind(value, fmt)}, not an object")
    return value


class _RepeatedKeyError(Exception):
    """An object holds a key twice (found while parsing; :func:`repeated_key` says where)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _RepeatedKeyError
    return found


_COLON = re.compile(r"[ \t\r\n]*:")  # after a string: it was a key


def repeated_key(text: str) -> tuple[str, int] | None:
    """The first key of JSON ``text`` that its object already holds, and its line.

    Scans tokens only (strings, brackets, colons), so it also works on text
    that stops being valid JSON after that key.
    """
    objects: list[set[str] | None] = []  # the keys of each open object; None for an array
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char == '"':
            close = _string_end(text, i)
            keys = objects[-1] if objects else None
            if keys is not None and _COLON.match(text, close) is not None:
                key = _key(text[i:close])
                if key in keys:
                    return key, text.count("\n", 0, i) + 1
                keys.add(key)
            i = close
            continue
        if char == "{":
            objects.append(set())
        elif char == "[":
            objects.append(None)
        elif char in "}]" and objects:
            objects.pop()
        i += 1
    return None


def _key(token: str) -> str:
    """The text of a JSON string token (as written, if it does not decode)."""
    try:
        value = json.loads(token)
    except ValueError:
        return token[1:-1]
    return value if isinstance(value, str) else token[1:-1]


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _dump_json(doc: dict[str, Any], path: str) -> str:
    try:
        return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError:  # a number too large for a double read as infinity
        raise ConfigFileError(path, "holds a number too large to write back exactly") from None


# -- TOML ------------------------------------------------------------------------------


def _toml_document(text: str, path: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        problem = re.sub(r" at line \d+ col \d+$", "", str(exc)).rstrip(".")
        raise ConfigFileError(path, f"not valid TOML ({problem})", exc.line) from None
    except (tomlkit.exceptions.TOMLKitError, ValueError) as exc:
        raise ConfigFileError(path, f"not valid TOML ({exc})") from None


def _toml_with(
    text: str,
    key: str,
    name: str,
    fields: Mapping[str, Any],
    drop: Collection[str],
    path: str,
) -> str:
    # A last line without its newline would run into the table added after it.
    doc = _toml_document(text if not text or text.endswith("\n") else text + "\n", path)
    servers = doc.get(key)
    if servers is None:
        holder = tomlkit.table(is_super_table=True)  # only [key.name] appears in the file
        holder.add(name, _toml_entry(fields, inline=False))
        doc.add(key, holder)
    elif name in servers:
        current = servers[name]  # edited where it is: its comments and sub-tables stay
        for field in drop:
            if field in current:
                del current[field]
        for field, value in fields.items():
            current[field] = value
    else:
        servers[name] = _toml_entry(fields, inline=isinstance(servers, tomlkit.items.InlineTable))
    return _same_ending(text, tomlkit.dumps(doc))


def _toml_entry(entry: Mapping[str, Any], *, inline: bool) -> tomlkit.items.Item:
    table = tomlkit.inline_table() if inline else tomlkit.table()
    for field, value in entry.items():
        table.add(field, value)
    if not inline:
        table.add(tomlkit.nl())  # a blank line before whatever table follows
    return table


def _same_ending(original: str, edited: str) -> str:
    """``edited`` ending in as many newlines as ``original`` did (at least one; none if empty)."""
    if not edited.strip():
        return ""
    newlines = len(original) - len(original.rstrip("\n"))
    return edited.rstrip("\n") + "\n" * max(newlines, 1)


# -- plain values ----------------------------------------------------------------------


def _plain(fmt: Format, text: str, path: str) -> dict[str, Any]:
    if fmt == "toml":
        return _toml_document(text, path).unwrap()
    return _json_document(text, fmt, path)


def _object(fmt: Format) -> str:
    return "a table" if fmt == "toml" else "an object"


def _kind(value: object, fmt: Format) -> str:
    """What a value is, in the words of the file's format."""
    if fmt == "toml":
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return "an array of tables"
        names = {str: "a string", bool: "a boolean", int: "an integer", float: "a float"}
        return "an array" if isinstance(value, list) else names.get(type(value), "a value")
    if value is None:
        return "null"
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "an array" if isinstance(value, list) else names.get(type(value), "a value")


__all__ = [
    "CommentsWouldBeLostError",
    "ConfigFileError",
    "decode_text",
    "encode_text",
    "entry_in",
    "has_comments",
    "merged_entry",
    "repeated_key",
    "servers_in",
    "strip_jsonc",
    "with_entry",
    "without_entry",
]
