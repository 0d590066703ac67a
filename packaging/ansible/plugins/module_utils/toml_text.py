# Copyright: psquadlet maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""TOML text from Ansible variables (dicts, lists, strings, numbers, booleans).

Only what a psquadlet configuration holds: tables, arrays of tables, and values. The text is
checked by psquadlet itself (``generate --dry-run --json``) before it is put in place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class TomlValueError(ValueError):
    """A value TOML cannot hold; the message names its key path."""


def _key(key):
    key = str(key)
    return key if BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _scalar(value, path):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise TomlValueError("%s: %r is not a finite number" % (path, value))
        return repr(value)
    if isinstance(value, str):
        # JSON's string escapes (\" \\ \n \t \uXXXX ...) are all valid in a TOML basic string.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = ["%s = %s" % (_key(k), _scalar(v, "%s.%s" % (path, k))) for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, (list, tuple)):
        items = [_scalar(v, "%s[%d]" % (path, i)) for i, v in enumerate(value)]
        return "[" + ", ".join(items) + "]"
    raise TomlValueError(
        "%s: a value of type %s cannot be written to TOML" % (path, type(value).__name__)
    )


def _is_table_array(value):
    return (
        isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _is_subtable(value):
    return (isinstance(value, dict) and bool(value)) or _is_table_array(value)


def _table(lines, table, path):
    """Append the keys of `table` (dotted `path`), then its sub-tables.

    A non-empty dict is a [table] and a list of dicts an [[array of tables]] (TOML reads
    them exactly as inline tables); everything else is a value on the key's own line.
    """
    subtables = []
    for key, value in table.items():
        where = path + (str(key),)
        if _is_subtable(value):
            subtables.append((where, value))
        else:
            lines.append("%s = %s" % (_key(key), _scalar(value, ".".join(where))))
    for where, value in subtables:
        header = ".".join(_key(k) for k in where)
        if isinstance(value, dict):
            if not all(_is_subtable(v) for v in value.values()):  # else implied by its children
                lines.extend(["", "[%s]" % header])
            _table(lines, value, where)
            continue
        for item in value:
            lines.extend(["", "[[%s]]" % header])
            _table(lines, item, where)


def dumps(data):
    """The TOML document for `data` (a dict), ending with a newline."""
    if not isinstance(data, dict):
        raise TomlValueError("the configuration must be a dictionary")
    lines = []
    _table(lines, data, ())
    return "\n".join(lines).lstrip("\n") + "\n"
