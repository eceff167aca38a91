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
    """A parsed filter expression that can be applied to columns of any length.

    Two roles keep every accepted filter evaluable: a condition (a comparison, `and`/`or`/`not`
    of conditions, a column, True/False) is what the filter is and what `and`/`or`/`not` take;
    a value (a column, a number or string, `-` of a number or column) is what comparisons take,
    and a list or tuple of constants only as the right side of `in`/`not in`.
    """

    def __init__(self, text: str, columns: list[str]):
        self.text = text
        self.columns = columns
        try:
            tree = ast.parse(text.strip(), mode="eval")
            self._root = tree.body
            self.names = sorted(self._condition(self._root))
        except SyntaxError:
            raise self._error("not a valid expression") from None
        except (RecursionError, MemoryError):
            raise self._error("nested too deeply") from None

    def _error(self, what: str) -> StoreError:
        """One-line error naming the filter and what is wrong with it."""
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return StoreError(f"filter {shown!r}: {what}")

    def _condition(self, node: ast.AST) -> set[str]:
        """Check a node that must be true or false per row; the columns it reads."""
        if isinstance(node, ast.BoolOp):
            return set().union(*(self._condition(v) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self._condition(node.operand)
        if isinstance(node, ast.Compare):
            return self._comparison(node)
        if isinstance(node, ast.Name):
            return self._column(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return set()
        if isinstance(node, (ast.Constant, ast.List, ast.Tuple, ast.UnaryOp)):
            raise self._error(f"{self._what(node)} is not a condition (compare columns with "
                              "numbers or strings, joined by and/or/not)")
        return self._value(node)  # refuses it, naming what is not allowed

    def _comparison(self, node: ast.Compare) -> set[str]:
        """Check `a < b`, `a < b < c`, `a in [...]`: values on every side, lists only after in."""
        names = self._value(node.left)
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                names |= (self._constants(right) if isinstance(right, (ast.List, ast.Tuple))
                          else self._value(right))
            elif type(op) in _COMPARE:
                names |= self._value(right)
            else:
                raise self._error(f"operator {type(op).__name__} is not allowed")
        return names

    def _value(self, node: ast.AST) -> set[str]:
        """Check a node compared per row: a column, a constant, or minus one of them."""
        if isinstance(node, ast.Name):
            return self._column(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return set()
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = node.operand
            if isinstance(operand, ast.Constant) and isinstance(operand.value, (int, float)) \
                    and not isinstance(operand.value, bool):
                return set()
            if isinstance(operand, ast.Name):
                return self._column(operand)
        raise self._error(f"{self._what(node)} is not allowed here (use columns, numbers, "
                          "strings, comparisons, and/or/not)")

    def _constants(self, node: ast.List | ast.Tuple) -> set[str]:
        """Check the list of an `in`: numbers or strings (negative numbers too)."""
        for item in node.elts:
            negative = isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub)
            inner = item.operand if negative else item
            if not (isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float, str))
                    and not (negative and isinstance(inner.value, str))):
                raise self._error("the list after `in` holds only numbers or strings")
        return set()

    def _column(self, node: ast.Name) -> set[str]:
        """A known column's name, or one line listing the columns."""
        if node.id not in self.columns:
            raise self._error(f"unknown column {node.id!r} (columns: {', '.join(self.columns)})")
        return {node.id}

    @staticmethod
    def _what(node: ast.AST) -> str:
        """How a refused node is named in the error."""
        if isinstance(node, ast.Constant):
            return f"the constant {node.value!r}"
        names = {ast.List: "a list", ast.Tuple: "a tuple", ast.UnaryOp: "a negation"}
        return names.get(type(node), type(node).__name__)

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean mask over the rows of the given columns (only self.names need be present)."""
        length = len(next(iter(columns.values()))) if columns else 0
        try:
            result = self._eval(self._root, columns)
        except RecursionError:
            raise self._error("nested too deeply") from None
        if np.ndim(result) == 0:  # a filter without columns, e.g. `1 < 2`
            result = np.full(length, bool(result))
        return np.asarray(result, dtype=bool)

    def _eval(self, node: ast.AST, cols: Mapping[str, np.ndarray]):
        """Evaluate a checked condition with numpy semantics (elementwise and/or)."""
        if isinstance(node, ast.BoolOp):
            parts = [self._truth(v, cols) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            return combine.reduce(np.broadcast_arrays(*parts))
        if isinstance(node, ast.UnaryOp):  # `not`
            return np.logical_not(self._truth(node.operand, cols))
        if isinstance(node, ast.Compare):
            return self._compare(node, cols)
        if isinstance(node, ast.Name):
            return self._truth(node, cols)
        return node.value

    def _truth(self, node: ast.AST, cols: Mapping[str, np.ndarray]) -> np.ndarray:
        """A condition's per-row truth; a column used as one must hold booleans."""
        if isinstance(node, ast.Name):
            column = np.asarray(cols[node.id])
            if column.dtype != bool:
                raise self._error(f"column {node.id!r} holds {column.dtype} values, not true/"
                                  f"false: compare it (e.g. {node.id} > 0)")
            return column
        return np.asarray(self._eval(node, cols), dtype=bool)

    def _operand(self, node: ast.AST, cols: Mapping[str, np.ndarray]):
        """A comparison's side: a column, a constant, minus one, or the list of an `in`."""
        if isinstance(node, ast.Name):
            return cols[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._operand(v, cols) for v in node.elts]
        if isinstance(node, ast.UnaryOp):
            value = self._operand(node.operand, cols)
            if not np.issubdtype(np.asarray(value).dtype, np.number):
                raise self._error(f"minus of {ast.unparse(node.operand)!r}, which is not a "
                                  "number")
            return -value
        return node.value

    def _compare(self, node: ast.Compare, cols: Mapping[str, np.ndarray]):
        """Chained comparisons `a < b < c` mean `a < b and b < c`, as in Python."""
        mask = True
        left = self._operand(node.left, cols)
        for op, right_node in zip(node.ops, node.comparators):
            right = self._operand(right_node, cols)
            try:
                if isinstance(op, (ast.In, ast.NotIn)):
                    hit = np.isin(left, right)
                    part = hit if isinstance(op, ast.In) else ~hit
                else:
                    part = _COMPARE[type(op)](left, right)
            except (TypeError, ValueError, np.exceptions.DTypePromotionError):
                raise self._error("compares values of different types") from None
            mask = np.logical_and(mask, part)
            left = right
        return mask
