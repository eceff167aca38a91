"""Ray's own readers of the recipes, run offline: the cluster launcher's `prepare_config` and
`validate_config`, the autoscaling config the KubeRay autoscaler derives from a RayCluster, and
the runtime-env validation a job's `runtimeEnvYAML` goes through (plus the key check Ray lacks:
it takes an unknown key such as `workdir` for a plugin's name and ignores it)."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterator
from typing import Any

import yaml

from recipecheck.kuberay import cluster_spec_of
from recipecheck.shape import Finding, child, dig, unknown_key

MAX_REPLICAS_DEFAULT = 2**31 - 1  # the CRD's default for maxReplicas
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|(^|_)KEY$", re.IGNORECASE)
NOT_SECRET = re.compile(r"_(PATH|FILE|MODE|NAME|URI|HOST|USERNAME)$", re.IGNORECASE)


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def quietly(function, *args: Any) -> Any:
    """Call a Ray helper with its log lines (warnings about defaults it fills) silenced."""
    loggers = [logging.getLogger(n) for n in ("ray", "ray.autoscaler")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        return function(*args)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def prepare_launcher(config: dict) -> dict:
    """The config `ray up` would run with: Ray's `prepare_config`, then its `validate_config`."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = quietly(prepare_config, copy.deepcopy(config))
    quietly(validate_config, prepared)
    return prepared


def launcher_findings(config: dict) -> Iterator[Finding]:
    """What Ray's cluster launcher refuses in a `ray up` file, as findings."""
    import jsonschema

    try:
        prepare_launcher(config)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        yield where or "(top)", f"Ray's launcher schema: {exc.message}"
    except (Exception, SystemExit) as exc:  # Ray aborts some configs through click/SystemExit
        yield "(top)", f"Ray's launcher refuses it: {first_line(exc)}"


def with_crd_defaults(spec: dict) -> dict:
    """A RayCluster spec as the API server stores it: the CRD's defaults filled in, which is
    what the autoscaler reads back."""
    spec = copy.deepcopy(spec)
    spec.setdefault("workerGroupSpecs", [])
    for group in spec["workerGroupSpecs"]:
        if isinstance(group, dict):
            group.setdefault("minReplicas", 0)
            group.setdefault("maxReplicas", MAX_REPLICAS_DEFAULT)
            group.setdefault("numOfHosts", 1)
    return spec


def autoscaling_config(document: dict) -> dict:
    """The autoscaling config the KubeRay autoscaler derives from a RayCluster (or a RayJob's
    rayClusterSpec), through Ray's own derivation, which also runs `validate_config`."""
    from ray.autoscaler._private.kuberay.autoscaling_config import (
        _derive_autoscaling_config_from_ray_cr)

    spec, _ = cluster_spec_of(document)
    metadata = document.get("metadata") or {}
    resource = {"metadata": {"name": metadata.get("name", "cluster"),
                             "namespace": metadata.get("namespace", "default")},
                "spec": with_crd_defaults(spec or {})}
    return quietly(_derive_autoscaling_config_from_ray_cr, resource)


def offered_resources(document: dict) -> dict[str, dict[str, int]]:
    """Ray resources (CPU, GPU, memory, ...) each group's nodes offer, as the autoscaler sees."""
    types = autoscaling_config(document)["available_node_types"]
    return {name: dict(node_type["resources"]) for name, node_type in types.items()}


def autoscaling_findings(document: dict) -> Iterator[Finding]:
    """A cluster spec the autoscaler cannot read (e.g. no CPU count it can infer)."""
    spec, at = cluster_spec_of(document)
    if not isinstance(spec, dict):
        return
    try:
        autoscaling_config(document)
    except Exception as exc:
        yield at, f"Ray's KubeRay autoscaler cannot read it: {first_line(exc)}"


def runtime_env(text: object) -> dict | None:
    """A runtimeEnvYAML string as a mapping, or None when it is not one."""
    try:
        env = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        return None
    return env if isinstance(env, dict) else None


def runtime_env_findings(text: object, at: str) -> Iterator[Finding]:
    """Keys Ray does not know (it would ignore them silently), what Ray's validation refuses, and
    secrets in env_vars (which the job API shows to anyone who can list jobs)."""
    from ray.runtime_env import RuntimeEnv
    from ray.runtime_env.runtime_env import RuntimeEnvConfig

    env = runtime_env(text)
    if env is None:
        if text is not None and str(text).strip():
            yield at, "must be a YAML mapping of runtime_env fields"
        return
    public = sorted(k for k in RuntimeEnv.known_fields if not k.startswith("_"))
    unknown = [k for k in env if k not in RuntimeEnv.known_fields]
    for key in unknown:
        yield child(at, str(key)), (f"{unknown_key(str(key), public)}; Ray would take it for a "
                                    "plugin and ignore it")
    config = env.get("config")
    if isinstance(config, dict):
        for key in config:
            if key not in RuntimeEnvConfig.known_fields:
                known = sorted(RuntimeEnvConfig.known_fields)
                yield child(at, f"config.{key}"), unknown_key(str(key), known)
    for name in env.get("env_vars") or {}:
        if SECRET_NAME.search(str(name)) and not NOT_SECRET.search(str(name)):
            yield child(at, f"env_vars.{name}"), ("looks like a secret: runtime env vars are "
                                                   "shown by the job API; read it from a Secret "
                                                   "in the pod's env instead")
    if unknown:
        return
    try:
        RuntimeEnv(**env)
    except Exception as exc:
        yield at, f"Ray refuses this runtime env: {first_line(exc)}"


def job_runtime_env_findings(document: dict) -> Iterator[Finding]:
    """The runtime-env checks for a RayJob's `runtimeEnvYAML`."""
    if document.get("kind") == "RayJob":
        yield from runtime_env_findings(dig(document, "spec", "runtimeEnvYAML"),
                                        "spec.runtimeEnvYAML")
