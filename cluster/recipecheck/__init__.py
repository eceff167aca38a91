"""Offline checks of the cluster recipes: each file is read the way its consumer reads it
(kubectl and the KubeRay operator, `ray up`, docker, systemd) and every problem becomes one line
naming the file and the field.

    from recipecheck import check_paths
    for problem in check_paths([Path("cluster/kuberay/raycluster.yaml")]):
        print(problem)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from recipecheck import artifacts, core, kuberay, policy, ray_own
from recipecheck.shape import Finding, dig

CLUSTER = Path(__file__).resolve().parents[1]
SKIPPED = {"recipecheck", "check.py", "__pycache__"}


@dataclass(frozen=True)
class Problem:
    """One problem: the file, the field (or line) and what is wrong, printed as one line."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        """`FILE: FIELD: MESSAGE`."""
        return f"{self.file}: {self.field}: {self.message}"


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML's hook
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def kind_of(path: Path) -> str:
    """Which reader a file has: yaml, dockerfile, systemd, requirements, or plain text."""
    name = path.name
    if name == "Dockerfile" or name.endswith(".Dockerfile"):
        return "dockerfile"
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith(".service"):
        return "systemd"
    if name.endswith("requirements.txt"):
        return "requirements"
    return "text"


def label(document: dict) -> str:
    """`Kind/name` of a Kubernetes object, or `ray up` for a launcher file."""
    if "provider" in document:
        return "ray up"
    return f"{document.get('kind', '?')}/{dig(document, 'metadata', 'name') or '?'}"


def kubernetes_findings(document: dict, services: list[str]) -> Iterator[Finding]:
    """Shape, operator rules, Ray's readers and the policy for one Kubernetes object."""
    kind = document.get("kind")
    shape = kuberay.KUBERAY_KINDS.get(kind) or core.CORE_KINDS.get(kind)
    if shape is None:
        known = sorted([*kuberay.KUBERAY_KINDS, *core.CORE_KINDS])
        yield "kind", f"{kind!r} is not a kind the recipes use ({', '.join(known)})"
        return
    found = list(shape.check(document, ""))
    yield from found
    if kind in kuberay.KUBERAY_KINDS:
        env = ray_own.runtime_env(dig(document, "spec", "runtimeEnvYAML"))
        yield from kuberay.operator_rules(document)
        yield from kuberay.project_rules(document, env)
        yield from ray_own.job_runtime_env_findings(document)
        if not found:  # the autoscaler's reader assumes the shape is right
            yield from ray_own.autoscaling_findings(document)
    yield from policy.document_findings(document)
    if kind == "Deployment":
        for where, command in artifacts.deployment_commands(document):
            if "mlflow" in command and "server" in command:
                yield from artifacts.mlflow_command_findings(command, services, where)


def yaml_findings(text: str) -> Iterator[Finding]:
    """Every document of a YAML file: Kubernetes objects and `ray up` files."""
    try:
        documents = [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "(yaml)"
        yield where, f"not valid YAML: {' '.join(str(exc.problem or exc.context).split())}"
        return
    except yaml.YAMLError as exc:
        yield "(yaml)", f"not valid YAML: {' '.join(str(exc).split())}"
        return
    services = [dig(d, "metadata", "name") for d in documents
                if isinstance(d, dict) and d.get("kind") == "Service"]
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            yield f"document {index + 1}", "expected a mapping"
            continue
        prefix = label(document)
        if "provider" in document:
            findings = [*ray_own.launcher_findings(document),
                        *artifacts.launcher_rules(document)]
        elif "apiVersion" in document or "kind" in document:
            findings = list(kubernetes_findings(document, [s for s in services if s]))
        else:
            findings = [("(top)", "neither a Kubernetes object nor a `ray up` file")]
        for where, message in findings:
            yield f"{prefix}: {where}", message


READERS = {"yaml": yaml_findings, "dockerfile": artifacts.dockerfile_findings,
           "systemd": artifacts.systemd_findings,
           "requirements": artifacts.requirements_findings}


def check_text(path: Path, text: str, deploy: bool = False) -> list[Problem]:
    """Problems of one file's text; with `deploy`, placeholders still in it are problems too."""
    findings: list[Finding] = []
    reader = READERS.get(kind_of(path))
    if reader is not None:
        findings += reader(text)
    findings += policy.version_findings(text)
    findings += policy.secret_findings(text)
    if deploy:
        for number, line in enumerate(text.splitlines(), 1):
            for name in re.findall(r"\bYOUR_[A-Z0-9_]+", line):
                findings.append((f"line {number}", f"placeholder {name} is still there"))
    shown = _relative(path)
    unique = dict.fromkeys(Problem(shown, where, message) for where, message in findings)
    return list(unique)


def _relative(path: Path) -> str:
    """The path as the user would type it from the repository root, when it is inside."""
    try:
        return str(path.resolve().relative_to(CLUSTER.parent))
    except ValueError:
        return str(path)


def recipe_files(folder: Path = CLUSTER) -> list[Path]:
    """Every recipe under cluster/ (the checker itself left out)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not SKIPPED.intersection(p.relative_to(folder).parts))


def check_paths(paths: Iterable[Path], deploy: bool = False) -> list[Problem]:
    """Problems of the given files (folders are searched for recipes)."""
    problems: list[Problem] = []
    for path in paths:
        for file in recipe_files(path) if path.is_dir() else [path]:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(str(file), "(file)", f"cannot read: {exc}"))
                continue
            problems += check_text(file, text, deploy)
    return problems
