"""Compose files as YAML 1.2, read with PyYAML, within bounds.

PyYAML reads YAML 1.1, compose reads YAML 1.2: ``- 22:22`` is the port mapping "22:22" to
compose and the number 1342 (base 60) to PyYAML; ``on`` is a string to compose and true to
PyYAML. The loader here resolves plain scalars with YAML 1.2's core schema.

It also bounds what a document may cost: the file's size (``inputfile``), its nesting depth,
and its size once aliases are expanded (a "billion laughs" document is a few lines that expand
to billions of nodes). Each refusal names the line.
"""

from __future__ import annotations

import re
from typing import Any

from psquadlet.importer.draft import ImportInputError
from psquadlet.importer.durations import MAX_NUMBER
from psquadlet.importer.inputfile import read_text

MAX_DEPTH = 64
"""Nesting levels a compose file may use, aliases included (real files use under ten)."""
MAX_EXPANDED = 250_000
"""Cost of the document once aliases are expanded: one per node, one per 16 characters."""

# YAML 1.1's implicit types, which YAML 1.2 (compose) resolves otherwise or not at all.
_CORE_1_1 = tuple(f"tag:yaml.org,2002:{kind}" for kind in ("bool", "int", "float", "timestamp"))
_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _ = _CORE_1_1


class _Refusal(Exception):
    """A document over a bound, or a value that cannot be built; ``line`` is 1-based."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


def _check_expansion(yaml: Any, root: Any) -> None:
    """Refuse a node graph deeper than MAX_DEPTH or costlier than MAX_EXPANDED once expanded.

    Aliases share nodes, so each node's cost and height are computed once (memo by identity);
    the walk itself never goes deeper than MAX_DEPTH, even through an alias to itself.
    """
    memo: dict[int, tuple[int, int]] = {}

    def walk(node: Any, depth: int) -> tuple[int, int]:
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise _Refusal(line, f"nested deeper than {MAX_DEPTH} levels (aliases included)")
        known = memo.get(id(node))
        if known is not None:
            cost, height = known
        else:
            children: list[Any] = []
            cost, height = 1, 1
            if isinstance(node, yaml.ScalarNode):
                cost += len(node.value) // 16
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = [part for pair in node.value for part in pair]
            for child in children:
                child_cost, child_height = walk(child, depth + 1)
                cost += child_cost
                height = max(height, child_height + 1)
                if cost > MAX_EXPANDED:
                    break
            memo[id(node)] = (cost, height)
        if depth + height - 1 > MAX_DEPTH:
            raise _Refusal(line, f"nested deeper than {MAX_DEPTH} levels (aliases included)")
        if cost > MAX_EXPANDED:
            raise _Refusal(
                line,
                f"too large: over {MAX_EXPANDED} nodes once aliases are expanded",
            )
        return cost, height

    walk(root, 1)


def _loader(yaml: Any) -> Any:
    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    line = self.peek_event().start_mark.line + 1
                    raise _Refusal(line, f"nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, OverflowError) as exc:  # e.g. !!timestamp 2024-02-30
                raise _Refusal(node.start_mark.line + 1, f"invalid value: {exc}") from None

        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            _check_expansion(yaml, node)
            return self.construct_document(node)

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _CORE_1_1]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    Loader.add_implicit_resolver(
        _INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
    )
    Loader.add_implicit_resolver(
        _FLOAT_TAG,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )

    def construct_int(loader: Any, node: Any) -> int:
        text = str(loader.construct_scalar(node))
        number = int(text[:80], 0) if text.startswith(("0o", "0x")) else int(text[:80], 10)
        if len(text) > 80 or abs(number) > MAX_NUMBER:
            shown = text if len(text) <= 30 else text[:30] + "..."
            raise _Refusal(node.start_mark.line + 1, f"the number {shown} does not fit 64 bits")
        return number

    Loader.add_constructor(_INT_TAG, construct_int)
    return Loader


def load(path: str) -> Any:
    """The document in ``path``; raises ImportInputError (``path:line: ...``) when it cannot."""
    try:
        import yaml  # noqa: PLC0415 - only --compose needs PyYAML
    except ImportError:  # pragma: no cover - the test venv has PyYAML
        raise ImportInputError(
            "reading compose files needs PyYAML: pip install 'psquadlet[compose]'"
        ) from None
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_loader(yaml))  # noqa: S506 - a SafeLoader
    except _Refusal as exc:
        raise ImportInputError(f"{path}:{exc.line}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise ImportInputError(f"{where}: invalid YAML: {problem}") from None
