"""Rules for the recipes that are not Kubernetes objects: `ray up` files (token auth on every
node, the dashboard on loopback), Dockerfiles (the pinned base image, sources that exist, every
pip call under constraints.txt), requirement files, and the `mlflow server` command wherever it
is written (basic auth, PostgreSQL, an artifact store, `--allowed-hosts` naming the service)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from recipecheck.core import containers
from recipecheck.policy import ROOT
from recipecheck.shape import Finding, dig

LOOPBACK = ("127.0.0.1", "localhost")
POSTGRES_DRIVERS = ("psycopg2-binary", "psycopg2", "psycopg", "psycopg-binary")


def _home(path: str) -> str:
    """A remote path with `$HOME`/`${HOME}` written as `~`, so mounts and commands compare."""
    return re.sub(r"^(\$HOME|\$\{HOME\})", "~", path.strip("'\""))


def launcher_rules(config: dict) -> Iterator[Finding]:
    """Every `ray start` of a `ray up` file runs with token auth and a token file the launcher
    copies to the node, and the head keeps its dashboard (and job API) on loopback."""
    mounts = {_home(k) for k in (config.get("file_mounts") or {})}
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        commands = config.get(key)
        starts = [i for i, c in enumerate(commands or []) if "ray start" in str(c)]
        if not starts:
            yield key, ("missing: Ray's defaults start nodes without token auth (and the head's "
                        "dashboard on 0.0.0.0)")
            continue
        for index in starts:
            before = " ".join(str(c) for c in commands[: index + 1])
            where = f"{key}[{index}]"
            if "RAY_AUTH_MODE=token" not in before:
                yield where, "ray start without RAY_AUTH_MODE=token"
            path = re.search(r"RAY_AUTH_TOKEN_PATH=([^\s;]+)", before)
            if path is None:
                yield where, "ray start without RAY_AUTH_TOKEN_PATH (the token file on the node)"
            elif _home(path.group(1)) not in mounts:
                yield where, (f"RAY_AUTH_TOKEN_PATH={path.group(1)} is not among file_mounts, "
                              "so the token never reaches the node")
            host = re.search(r"--dashboard-host[= ](\S+)", str(commands[index]))
            if host and host.group(1).strip("'\"") not in LOOPBACK:
                yield where, (f"--dashboard-host={host.group(1)} puts the job API on the network: "
                              "keep 127.0.0.1 and use `ray dashboard` (an SSH tunnel)")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Dockerfile instructions with `\\` continuations joined, each with its first line number."""
    found: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        start = start or number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((start, pending + line))
        pending, start = "", 0
    return found


def dockerfile_findings(text: str, context: Path = ROOT) -> Iterator[Finding]:
    """A Dockerfile built from the repository root (or the folder its `# context:` line names):
    its base image, resolved through ARG defaults, carries a pinned tag with the project's
    versions, every COPY source exists, and every pip call runs under pinned versions."""
    from recipecheck.policy import version_findings

    declared = re.search(r"^# context: (\S+)", text, re.MULTILINE)
    context = context / declared.group(1) if declared else context
    args: dict[str, str] = {}
    for number, line in logical_lines(text):
        word, _, rest = line.strip().partition(" ")
        word, where = word.upper(), f"line {number}"
        if word == "ARG" and "=" in rest:
            name, _, value = rest.strip().partition("=")
            args[name] = value.strip("'\"")
        elif word == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)),
                           rest.split()[0])
            if ":" not in image.rpartition("/")[2] or image.endswith(":latest"):
                yield where, f"base image {image}: pin a version tag"
            for _, problem in version_findings(image):
                yield where, f"base image {image}: {problem}"
        elif word in ("COPY", "ADD"):
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            if "--from=" in rest:
                continue
            for source in parts[:-1]:
                if not (context / source).exists():
                    yield where, f"COPY source {source!r} is not in the build context"
        elif word == "RUN":
            for command in re.split(r"&&|;|\|\|", rest):
                if re.search(r"\bpip3? install\b", command) and not re.search(
                        r"(-c|--constraint|-r|--requirement)[ =]\S*(constraints|requirements)"
                        r"\.txt", command):
                    yield where, ("pip install without -c constraints.txt (or a pinned -r "
                                  "requirements.txt) could move torch or another pin")


def requirements_findings(text: str) -> Iterator[Finding]:
    """A requirements file for a server: every line pinned exactly, a PostgreSQL driver among
    them."""
    names = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==[\w.]+", line)
        if match is None:
            yield f"line {number}", f"{line!r} is not pinned exactly (name==version)"
        else:
            names.append(match.group(1).lower())
    if not set(names) & set(POSTGRES_DRIVERS):
        yield "(file)", "no PostgreSQL driver pinned (psycopg2-binary or psycopg)"


def mlflow_command_findings(command: str, services: list[str], where: str) -> Iterator[Finding]:
    """An `mlflow server` command line: basic auth, a PostgreSQL backend, an artifact store,
    and --allowed-hosts naming each Service in front of it."""
    yield from mlflow_parser_findings(command, where)
    flags = _flags(command)
    if flags.get("--app-name") != "basic-auth":
        yield where, "mlflow server without --app-name basic-auth: anyone reaching it may write"
    if not str(flags.get("--backend-store-uri", "")).startswith("postgresql"):
        yield where, "--backend-store-uri must be a postgresql:// URI (SQLite locks under load)"
    if "--artifacts-destination" not in flags:
        yield where, "no --artifacts-destination (the artifact store runs proxied by the server)"
    if "--disable-security-middleware" in flags:
        yield where, "--disable-security-middleware turns off host and CORS checks"
    allowed = str(flags.get("--allowed-hosts", ""))
    if not allowed or "*" == allowed.strip():
        yield where, "--allowed-hosts must list the names clients use (not '*')"
    for service in services:
        if service not in allowed:
            yield where, f"--allowed-hosts does not name the Service {service!r}"


def mlflow_parser_findings(command: str, where: str) -> Iterator[Finding]:
    """What the installed `mlflow server` command itself refuses (an unknown or misspelt flag,
    a bad value), found by letting its own option parser read the arguments."""
    import click
    from mlflow.cli import server

    words = _words(command)
    after = [i for i, w in enumerate(words) if w == "server" and i and "mlflow" in words[i - 1]]
    if not after:
        return
    try:
        server.make_context("server", words[after[0] + 1:])
    except click.ClickException as exc:
        yield where, f"mlflow server refuses it: {exc.format_message()}"


def _words(command: str) -> list[str]:
    """A command line split as a shell would (plainly on whitespace if its quotes are broken)."""
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _flags(command: str) -> dict[str, str]:
    """`--flag value` and `--flag=value` pairs of a command line (flags without values map to
    '')."""
    words = _words(command)
    flags: dict[str, str] = {}
    for index, word in enumerate(words):
        if word.startswith("--"):
            name, equals, value = word.partition("=")
            if not equals and index + 1 < len(words) and not words[index + 1].startswith("--"):
                value = words[index + 1]
            flags[name] = value
    return flags


def deployment_commands(document: dict) -> list[tuple[str, str]]:
    """(dotted path, joined command line) of each container of a Deployment."""
    found = []
    template = dig(document, "spec", "template")
    for index, container in enumerate(containers(template)):
        words = [*(container.get("command") or []), *(container.get("args") or [])]
        found.append((f"spec.template.spec.containers[{index}]", " ".join(map(str, words))))
    return found


def systemd_findings(text: str) -> Iterator[Finding]:
    """A systemd unit running `mlflow server`: secrets from an EnvironmentFile, not the unit;
    loopback unless the EnvironmentFile names the private address; the MLflow command rules."""
    joined = [line for _, line in logical_lines(text)]
    if not any(line.startswith("EnvironmentFile=") for line in joined):
        yield "[Service]", "no EnvironmentFile=: where would the database password come from?"
    for line in joined:
        if line.startswith("ExecStart=") and "mlflow" in line and " server" in line:
            yield from mlflow_command_findings(line.partition("=")[2], [], "ExecStart")
            host = _flags(line.partition("=")[2]).get("--host", "")
            if host.strip("'\"") == "0.0.0.0":
                yield "ExecStart", "--host 0.0.0.0 listens on every interface: name the address"
        if line.startswith("Environment=") and re.search(r"PASSWORD|SECRET|TOKEN", line):
            yield line.partition("=")[2].split("=")[0], "a secret in the unit: use EnvironmentFile"
