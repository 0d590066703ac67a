from __future__ import annotations

from psquadlet.tomlpos import KeyPositions

TEXT = """\
# comment
[watch]
state_dir = "/x"

[containers."a.b"]
image = "x"
ports = [
  "1:2",
  "3",
]
environment = { TZ = "UTC" }
unit.after = ["x"]
description = \"\"\"
fake = 1
\"\"\"
'quoted key' = 1

[containers.c.health]
cmd = "x"
"""


def test_lines_of_tables_and_keys() -> None:
    pos = KeyPositions(TEXT)
    assert pos.line(["watch"]) == 2
    assert pos.line(["watch", "state_dir"]) == 3
    assert pos.line(["containers", "a.b"]) == 5
    assert pos.line(["containers", "a.b", "ports"]) == 7
    assert pos.line(["containers", "a.b", "environment"]) == 11
    assert pos.line(["containers", "a.b", "unit", "after"]) == 12
    assert pos.line(["containers", "a.b", "unit"]) == 12
    assert pos.line(["containers", "a.b", "quoted key"]) == 16
    assert pos.line(["containers", "c", "health", "cmd"]) == 19


def test_text_inside_multiline_values_is_not_a_key() -> None:
    pos = KeyPositions(TEXT)
    # "fake" only appears inside a multi-line string: falls back to its table.
    assert pos.line(["containers", "a.b", "fake"]) == 5


def test_unknown_paths_fall_back_to_the_nearest_ancestor() -> None:
    pos = KeyPositions(TEXT)
    assert pos.line(["containers", "a.b", "environment", "TZ"]) == 11
    assert pos.line(["nowhere"]) is None
