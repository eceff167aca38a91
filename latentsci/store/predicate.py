"""Row filters like `qed > 0.8 and sa < 3`, parsed into a whitelisted AST: user text is never eval'd."""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping

import numpy as np

from latentsci.errors import StoreError

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class Predicate:
    """A parsed filter expression that can be applied to columns of any length."""

    def __init__(self, text: str, columns: list[str]):
        self.text = text
        self.columns = columns
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            raise self._error("not a valid expression") from None
        self._root = tree.body
        self.names = sorted(self._check(self._root))

    def _error(self, what: str) -> StoreError:
        """One-line error naming the filter and what is wrong with it."""
        return StoreError(f"filter {self.text!r}: {what}")

    def _check(self, node: ast.AST) -> set[str]:
        """Walk the tree once, refusing any node outside the small filter language."""
        if isinstance(node, ast.BoolOp):
            return set().union(*(self._check(v) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            return self._check(node.operand)
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE and not isinstance(op, (ast.In, ast.NotIn)):
                    raise self._error(f"operator {type(op).__name__} is not allowed")
            return set().union(*(self._check(v) for v in [node.left, *node.comparators]))
        if isinstance(node, ast.Name):
            if node.id not in self.columns:
                raise self._error(
                    f"unknown column {node.id!r} (columns: {', '.join(self.columns)})"
                )
            return {node.id}
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return set()
        if isinstance(node, (ast.List, ast.Tuple)):
            return set().union(set(), *(self._check(v) for v in node.elts))
        raise self._error(f"{type(node).__name__} is not allowed (use columns, numbers, "
                          "strings, comparisons, and/or/not)")

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean mask over the rows of the given columns (only self.names need be present)."""
        result = self._eval(self._root, columns)
        if np.ndim(result) == 0:  # a filter without columns, e.g. `1 < 2`
            length = len(next(iter(columns.values()))) if columns else 0
            result = np.full(length, bool(result))
        return np.asarray(result, dtype=bool)

    def _eval(self, node: ast.AST, cols: Mapping[str, np.ndarray]):
        """Evaluate a checked node with numpy semantics (elementwise and/or)."""
        if isinstance(node, ast.BoolOp):
            parts = [np.asarray(self._eval(v, cols), dtype=bool) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            return combine.reduce(parts)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, cols)
            return np.logical_not(value) if isinstance(node.op, ast.Not) else -value
        if isinstance(node, ast.Compare):
            return self._compare(node, cols)
        if isinstance(node, ast.Name):
            return cols[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._eval(v, cols) for v in node.elts]
        return node.value

    def _compare(self, node: ast.Compare, cols: Mapping[str, np.ndarray]):
        """Chained comparisons `a < b < c` mean `a < b and b < c`, as in Python."""
        mask = True
        left = self._eval(node.left, cols)
        for op, right_node in zip(node.ops, node.comparators):
            right = self._eval(right_node, cols)
            if isinstance(op, (ast.In, ast.NotIn)):
                hit = np.isin(left, right)
                part = hit if isinstance(op, ast.In) else ~hit
            else:
                try:
                    part = _COMPARE[type(op)](left, right)
                except TypeError:
                    raise self._error("compares values of different types") from None
            mask = np.logical_and(mask, part)
            left = right
        return mask
