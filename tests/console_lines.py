"""What the project itself prints on a run's console (shared by the console tests)."""

import re

PROJECT_LINE = re.compile(
    r"^(Ray: (embedded|cluster) at \S+ \(|\[\w+\] (running|done in|unchanged|epoch)|"
    r"run directory: |manifest: {6}|  \w+\.\w+: |MLflow: {8}|full log: {6}|query: {9})")


def foreign_lines(text: str) -> list[str]:
    """Console lines that are not the project's own (no progress bars: CI is set)."""
    return [line for line in text.splitlines() if line and not PROJECT_LINE.match(line)]
