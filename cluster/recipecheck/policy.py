"""Rules every file under cluster/ follows: the versions it names are the project's pins, no
Service reaches outside the cluster, and no secret value is written down (secrets come from
Kubernetes Secrets or the environment)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from recipecheck.core import containers, env_of
from recipecheck.ray_own import NOT_SECRET, SECRET_NAME
from recipecheck.shape import Finding, dig

ROOT = Path(__file__).resolve().parents[2]


@cache
def pins(root: Path = ROOT) -> dict[str, str]:
    """The project's pinned versions (ray, torch, mlflow, ...) and its Python (3.11), read from
    pyproject.toml so the recipes follow the project rather than a copy of its pins."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;]+)", requirement.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    python = re.search(r">=\s*(\d+\.\d+)", project["requires-python"])
    found["python"] = python.group(1) if python else ""
    return found


def _python(major: str, minor: str) -> str:
    """'3.11' from the digits of a `py311` tag."""
    return f"{major}.{minor}"


# (pattern, package): the first group is the version, a second group (if any) the python minor
VERSION_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"rayproject/ray(?:-ml)?:(\d+\.\d+\.\d+)"), "ray"),
    (re.compile(r"rayproject/ray(?:-ml)?:[\d.]+-py(\d)(\d+)"), "python"),
    (re.compile(r"latentsci:(\d+\.\d+\.\d+)"), "ray"),
    (re.compile(r"latentsci:[\d.]+-py(\d)(\d+)"), "python"),
    (re.compile(r"\bray(?:\[[^\]]*\])?==(\d[\w.]*)"), "ray"),
    (re.compile(r"\brayVersion:\s*['\"]?(\d[\w.]*)"), "ray"),
    (re.compile(r"\bRAY_VERSION=(\d[\w.]*)"), "ray"),
    (re.compile(r"\bPYTHON=py(\d)(\d+)"), "python"),
    (re.compile(r"\btorch==(\d+\.\d+\.\d+)"), "torch"),
    (re.compile(r"\bmlflow==(\d[\w.]*)"), "mlflow"),
    (re.compile(r"latentsci-mlflow:v?(\d[\w.]*)"), "mlflow"),
    (re.compile(r"\bpython(?::|)(3\.\d+)\b"), "python"),
]


def version_findings(text: str) -> Iterator[Finding]:
    """Versions named in a file that differ from the project's pins, one per line and package."""
    wanted = pins()
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, package in VERSION_PATTERNS:
            for match in pattern.finditer(line):
                found = (_python(*match.groups()) if len(match.groups()) == 2
                         else match.group(1))
                if package in wanted and found != wanted[package]:
                    yield f"line {number}", (f"{package} {found}, but the project pins "
                                             f"{package} {wanted[package]} (pyproject.toml)")


PLACEHOLDER = re.compile(r"^(YOUR_[A-Z0-9_]+|<[^>]+>|\.\.\.|CHANGE_?ME)")
REFERENCE = re.compile(r"^(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\$\()")
SECRET_ASSIGNMENT = re.compile(
    r"(?i)([\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)"
    r"[\w.-]*)\s*[:=]\s*(\S+)")
CREDENTIAL_URI = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@")
KNOWN_SECRETS = re.compile(r"AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[bap]-[\w-]{10,}|"
                           r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
LONG_HEX = re.compile(r"(?<![\w:])[0-9a-fA-F]{32,}(?!\w)")
HARMLESS = {"true", "false", "null", "none", "''", '""', "{}", "[]", "|", ">", "-"}


def _is_literal(value: str) -> bool:
    """True when an assigned value is a written-down secret, not a reference, placeholder,
    name of a Secret key, or an empty/structural token."""
    value = value.strip().strip("'\"`,;)")
    if not value or value.lower() in HARMLESS or value.startswith(("#", "{", "[")):
        return False
    if value.startswith(("/", "~/", "./")):
        return False  # a file holding the secret (a mounted Secret, ~/.ray/auth_token)
    return not (REFERENCE.match(value) or PLACEHOLDER.match(value))


def secret_findings(text: str) -> Iterator[Finding]:
    """Lines that write a secret down: a secret-named key with a literal value, credentials in a
    URI, a known token format, or a long hex string (the shape of Ray's auth tokens)."""
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}"
        for match in SECRET_ASSIGNMENT.finditer(line):
            key, value = match.groups()
            if NOT_SECRET.search(key) or key.lower().endswith(("name", "ref")) or re.search(
                    r"\.(ya?ml|txt|ini|py|md|json)$", key):
                continue  # secretName:, secretKeyRef:, RAY_AUTH_TOKEN_PATH=, secret.yaml:
            if _is_literal(value):
                yield where, (f"{key} is given a literal value: read it from a Secret or the "
                              "environment")
        for match in CREDENTIAL_URI.finditer(line):
            if _is_literal(match.group(1)):
                yield where, "a URI carries a password: pass credentials through the environment"
        if KNOWN_SECRETS.search(line) or LONG_HEX.search(line):
            yield where, "looks like a token or key: keep it in a Secret, not in a file"


def document_findings(document: dict) -> Iterator[Finding]:
    """Per-document rules: no public Service, Secrets filled from the environment only, and
    secret-named env vars set from Secrets rather than literal values."""
    kind = document.get("kind")
    if kind == "Service" and dig(document, "spec", "type") in ("LoadBalancer", "NodePort"):
        yield "spec.type", (f"{document['spec']['type']} makes it reachable from outside the "
                            "cluster: use ClusterIP and `kubectl port-forward`")
    head_service = dig(document, "spec", "headGroupSpec", "headService", "spec", "type") or dig(
        document, "spec", "rayClusterSpec", "headGroupSpec", "headService", "spec", "type")
    if head_service in ("LoadBalancer", "NodePort"):
        yield "headGroupSpec.headService.spec.type", f"{head_service} makes the job API public"
    if kind == "Secret":
        for section in ("stringData", "data"):
            for key, value in (document.get(section) or {}).items():
                if "user" in str(key).lower():
                    continue  # a user name says who, not how to prove it
                if not (isinstance(value, str) and REFERENCE.match(value.strip())):
                    yield f"{section}.{key}", ("write ${VARIABLE} and apply through envsubst: a "
                                               "secret value never lives in the manifest")
    for at, template in pod_templates(document):
        for index, container in enumerate(containers(template)):
            for name, entry in env_of(container).items():
                secret = SECRET_NAME.search(name) and not NOT_SECRET.search(name)
                if secret and "value" in entry:
                    yield (f"{at}.spec.containers[{index}].env.{name}",
                           "set it with valueFrom.secretKeyRef, not a literal value")
                value = entry.get("value")
                if isinstance(value, str) and CREDENTIAL_URI.search(value):
                    yield (f"{at}.spec.containers[{index}].env.{name}",
                           "the URI carries credentials: use MLFLOW_TRACKING_USERNAME/PASSWORD")


def pod_templates(document: dict) -> list[tuple[str, dict]]:
    """Every pod template of a Deployment, RayCluster or RayJob, with its dotted path."""
    found: list[tuple[str, object]] = []
    if document.get("kind") == "Deployment":
        found.append(("spec.template", dig(document, "spec", "template")))
    for prefix in (("spec",), ("spec", "rayClusterSpec")):
        spec = dig(document, *prefix)
        if document.get("kind") not in ("RayCluster", "RayJob") or not isinstance(spec, dict):
            continue
        at = ".".join(prefix)
        found.append((f"{at}.headGroupSpec.template", dig(spec, "headGroupSpec", "template")))
        for index, group in enumerate(spec.get("workerGroupSpecs") or []):
            found.append((f"{at}.workerGroupSpecs[{index}].template", dig(group, "template")))
    return [(at, t) for at, t in found if isinstance(t, dict)]
