"""RayCluster and RayJob (KubeRay operator v1.7.0, `ray.io/v1`): their shape, written from the
CRD's documented fields, and the rules the operator enforces when it reconciles rather than when
the API server admits the object (so `kubectl apply` succeeds and the cluster never comes up)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml

from recipecheck.core import POD_TEMPLATE, RESOURCES, containers, env_of, known, kind
from recipecheck.shape import (ANYTHING, BOOL, NON_NEGATIVE, NUMBER, POSITIVE, STR, Finding,
                               ListOf, MapOf, child, dig, obj, one_of)

OPERATOR = "v1.7.0"
MIN_TOKEN_AUTH_RAY = (2, 52, 0)  # the operator refuses authOptions.mode token below this
MAX_CLUSTER_NAME = 53  # pod and service names are derived from it and stop at 63 characters
MAX_JOB_NAME = MAX_CLUSTER_NAME - 6  # the job's cluster is named after it plus a suffix
CLUSTER_SELECTOR_KEY = "ray.io/cluster"
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
WAIT_FOR_GPUS = "LATENTSCI_WAIT_FOR_GPUS"

HEAD_GROUP = known(
    obj("template", rayStartParams=MapOf(), template=POD_TEMPLATE,
        serviceType=one_of("ClusterIP", "NodePort", "LoadBalancer"), enableIngress=BOOL,
        resources=MapOf(), labels=MapOf()),
    "headService", "ingressOptions")
WORKER_GROUP = known(
    obj("groupName template", groupName=STR, replicas=NON_NEGATIVE, minReplicas=NON_NEGATIVE,
        maxReplicas=NON_NEGATIVE, idleTimeoutSeconds=NON_NEGATIVE, rayStartParams=MapOf(),
        template=POD_TEMPLATE, numOfHosts=POSITIVE, resources=MapOf(), labels=MapOf(),
        priority=NON_NEGATIVE),
    "scaleStrategy", "suspend")
AUTOSCALER = known(
    obj(upscalingMode=one_of("Default", "Aggressive", "Conservative"),
        idleTimeoutSeconds=NON_NEGATIVE, version=one_of("v1", "v2"), resources=RESOURCES,
        imagePullPolicy=one_of("Always", "IfNotPresent", "Never"), image=STR),
    "securityContext", "env", "envFrom", "volumeMounts", "command", "args")
AUTH = obj(mode=one_of("disabled", "token"), secretName=STR, enableK8sTokenAuth=BOOL)
CLUSTER_SPEC = known(
    obj("headGroupSpec", rayVersion=STR, enableInTreeAutoscaling=BOOL,
        autoscalerOptions=AUTOSCALER, authOptions=AUTH, headGroupSpec=HEAD_GROUP,
        workerGroupSpecs=ListOf(WORKER_GROUP), suspend=BOOL),
    "upgradeStrategy", "managedBy", "headServiceAnnotations", "gcsFaultToleranceOptions",
    "historyServerOptions", "networkPolicy", "tlsOptions")
JOB_SPEC = known(
    obj(entrypoint=STR, runtimeEnvYAML=STR, rayClusterSpec=CLUSTER_SPEC,
        clusterSelector=MapOf(), shutdownAfterJobFinishes=BOOL,
        ttlSecondsAfterFinished=NON_NEGATIVE, activeDeadlineSeconds=POSITIVE,
        preRunningDeadlineSeconds=POSITIVE, backoffLimit=NON_NEGATIVE,
        submissionMode=one_of("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"),
        submitterPodTemplate=POD_TEMPLATE, submitterConfig=obj(backoffLimit=NON_NEGATIVE),
        entrypointNumCpus=NUMBER, entrypointNumGpus=NUMBER, entrypointResources=STR,
        jobId=STR, metadata=MapOf(), suspend=BOOL),
    "managedBy", "deletionStrategy")

RAY_CLUSTER = kind("ray.io/v1", "RayCluster", CLUSTER_SPEC, status=ANYTHING)
RAY_JOB = kind("ray.io/v1", "RayJob", JOB_SPEC, status=ANYTHING)
KUBERAY_KINDS = {"RayCluster": RAY_CLUSTER, "RayJob": RAY_JOB}


def version_tuple(text: str) -> tuple[int, ...] | None:
    """(2, 60, 0) from '2.60.0' (a leading 'v' allowed), or None when it is not a version."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    return tuple(int(p or 0) for p in match.groups()) if match else None


def name_rules(document: dict, limit: int) -> Iterator[Finding]:
    """A name the operator can derive pod and service names from."""
    name = dig(document, "metadata", "name")
    if not isinstance(name, str):
        return
    if len(name) > limit:
        yield "metadata.name", f"{len(name)} characters; the operator allows at most {limit}"
    if not DNS_1035.fullmatch(name):
        yield "metadata.name", ("must be a DNS-1035 label (lower-case letters, digits and '-', "
                                "starting with a letter)")


def group_rules(group: dict, at: str, autoscaling: bool) -> Iterator[Finding]:
    """One worker group: containers, replica bounds, and resources named in one place only."""
    if not containers(group.get("template")):
        yield child(at, "template.spec.containers"), "needs at least one container"
    low, high = group.get("minReplicas"), group.get("maxReplicas")
    if not autoscaling and (low is None or high is None):
        yield at, "set both minReplicas and maxReplicas when autoscaling is off"
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield child(at, "minReplicas"), f"{low} is greater than maxReplicas {high}"
    yield from start_param_rules(group, at)


def start_param_rules(group: dict, at: str) -> Iterator[Finding]:
    """rayStartParams that clash with the group's own `resources` and `labels` fields."""
    params = group.get("rayStartParams") or {}
    if not isinstance(params, dict):
        return
    sized = [k for k in ("num-cpus", "num-gpus", "memory", "resources") if params.get(k)]
    if sized and group.get("resources"):
        yield child(at, "resources"), (f"set either resources or rayStartParams {sized}, not "
                                       "both")
    if "labels" in params:
        yield child(at, "rayStartParams.labels"), "not supported: use the group's labels field"


def cluster_spec_rules(spec: dict, at: str) -> Iterator[Finding]:
    """What the operator checks in a RayCluster spec (also a RayJob's rayClusterSpec)."""
    autoscaling = spec.get("enableInTreeAutoscaling") is True
    head = spec.get("headGroupSpec")
    if isinstance(head, dict):
        if not containers(head.get("template")):
            yield child(at, "headGroupSpec.template.spec.containers"), "needs a container"
        yield from start_param_rules(head, child(at, "headGroupSpec"))
    groups = [g for g in spec.get("workerGroupSpecs") or [] if isinstance(g, dict)]
    seen: set[str] = set()
    for index, group in enumerate(groups):
        where = child(child(at, "workerGroupSpecs"), index)
        yield from group_rules(group, where, autoscaling)
        if group.get("groupName") in seen:
            yield child(where, "groupName"), f"{group['groupName']!r} is used twice"
        seen.add(group.get("groupName"))
    if autoscaling and dig(spec, "autoscalerOptions", "version") == "v2":
        for where, template in [("headGroupSpec", dig(spec, "headGroupSpec", "template")),
                                *[(f"workerGroupSpecs[{i}]", g.get("template"))
                                  for i, g in enumerate(groups)]]:
            if dig(template, "spec", "restartPolicy") not in (None, "Never"):
                yield (child(at, f"{where}.template.spec.restartPolicy"),
                       "must be Never (or unset) with autoscaler v2")
    yield from auth_rules(spec, at)


def auth_rules(spec: dict, at: str) -> Iterator[Finding]:
    """Token auth needs a Ray version that has it, stated in rayVersion."""
    if dig(spec, "authOptions", "mode") != "token":
        return
    version = spec.get("rayVersion")
    parsed = version_tuple(version) if isinstance(version, str) else None
    if parsed is None:
        yield child(at, "rayVersion"), ("authOptions.mode is token, so rayVersion must name the "
                                        "Ray version (2.52.0 or later)")
    elif parsed < MIN_TOKEN_AUTH_RAY:
        yield child(at, "rayVersion"), f"token auth needs Ray 2.52.0 or later, got {version}"


def job_rules(document: dict) -> Iterator[Finding]:
    """What the operator checks in a RayJob beyond its cluster spec."""
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return
    has_cluster, selector = spec.get("rayClusterSpec") is not None, spec.get("clusterSelector")
    if has_cluster == bool(selector):
        yield "spec", "set exactly one of rayClusterSpec and clusterSelector"
    if selector and not (isinstance(selector, dict) and selector.get(CLUSTER_SELECTOR_KEY)):
        yield "spec.clusterSelector", f"must name the cluster under {CLUSTER_SELECTOR_KEY!r}"
    ttl, shutdown = spec.get("ttlSecondsAfterFinished", 0), spec.get("shutdownAfterJobFinishes")
    if isinstance(ttl, int) and ttl > 0 and shutdown is not True:
        yield "spec.ttlSecondsAfterFinished", "has no effect: set shutdownAfterJobFinishes: true"
    if spec.get("suspend") is True and shutdown is not True:
        yield "spec.suspend", "a suspended RayJob needs shutdownAfterJobFinishes: true"
    retries = spec.get("backoffLimit")
    if isinstance(retries, int) and retries > 0:
        if selector:
            yield "spec.backoffLimit", "retries are not possible with clusterSelector"
        if spec.get("submissionMode") == "InteractiveMode":
            yield "spec.backoffLimit", "retries are not possible in InteractiveMode"
    if dig(spec, "rayClusterSpec", "authOptions", "enableK8sTokenAuth") is True:
        yield "spec.rayClusterSpec.authOptions", "Kubernetes token auth is not supported for RayJob"
    text = spec.get("runtimeEnvYAML")
    if isinstance(text, str):
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            yield "spec.runtimeEnvYAML", f"not valid YAML: {str(exc).splitlines()[0]}"
    if isinstance(spec.get("rayClusterSpec"), dict):
        yield from cluster_spec_rules(spec["rayClusterSpec"], "spec.rayClusterSpec")


def operator_rules(document: dict) -> Iterator[Finding]:
    """The operator's own rules for a RayCluster or RayJob document."""
    if document.get("kind") == "RayCluster":
        yield from name_rules(document, MAX_CLUSTER_NAME)
        if isinstance(document.get("spec"), dict):
            yield from cluster_spec_rules(document["spec"], "spec")
    elif document.get("kind") == "RayJob":
        yield from name_rules(document, MAX_JOB_NAME)
        yield from job_rules(document)


def cluster_spec_of(document: dict) -> tuple[dict | None, str]:
    """The RayCluster spec inside a RayCluster or RayJob, and its dotted path."""
    if document.get("kind") == "RayJob":
        return dig(document, "spec", "rayClusterSpec"), "spec.rayClusterSpec"
    return document.get("spec"), "spec"


def gpu_count(container: dict) -> tuple[object, object]:
    """The `nvidia.com/gpu` a container requests and limits (None where not set)."""
    return (dig(container, "resources", "requests", "nvidia.com/gpu"),
            dig(container, "resources", "limits", "nvidia.com/gpu"))


def project_rules(document: dict, runtime_env: dict | None) -> Iterator[Finding]:
    """This project's rules: token auth on, the head reachable only inside the cluster, GPU
    groups that land on GPU nodes, and a driver that waits for GPUs an autoscaler will add."""
    spec, at = cluster_spec_of(document)
    if not isinstance(spec, dict):
        return
    if dig(spec, "authOptions", "mode") != "token":
        yield child(at, "authOptions.mode"), "must be token (the job API runs any code it is sent)"
    head = spec.get("headGroupSpec") if isinstance(spec.get("headGroupSpec"), dict) else {}
    if head.get("serviceType", "ClusterIP") != "ClusterIP":
        yield child(at, "headGroupSpec.serviceType"), (
            f"{head['serviceType']} exposes the dashboard and job API outside the cluster: use "
            "ClusterIP and `kubectl port-forward`")
    if head.get("enableIngress") is True:
        yield child(at, "headGroupSpec.enableIngress"), "an Ingress makes the job API public"
    head_containers = containers(head.get("template"))
    head_env = env_of(head_containers[0]) if head_containers else {}
    waits = dig(head_env, WAIT_FOR_GPUS, "value") == "1" or dig(
        runtime_env, "env_vars", WAIT_FOR_GPUS) == "1"
    autoscaling = spec.get("enableInTreeAutoscaling") is True
    for index, group in enumerate(spec.get("workerGroupSpecs") or []):
        if not isinstance(group, dict):
            continue
        where = f"{at}.workerGroupSpecs[{index}]"
        ray_container = (containers(group.get("template")) or [{}])[0]
        requested, limited = gpu_count(ray_container)
        if requested is None and limited is None:
            continue
        if str(requested) != str(limited):
            yield f"{where}.template.spec.containers[0].resources", (
                f"nvidia.com/gpu requests ({requested}) and limits ({limited}) must be equal")
        tolerated = [t for t in dig(group, "template", "spec", "tolerations") or []
                     if isinstance(t, dict) and t.get("key") == "nvidia.com/gpu"]
        if not tolerated:
            yield f"{where}.template.spec.tolerations", (
                "a GPU group needs a toleration for the nvidia.com/gpu taint of GPU nodes")
        if autoscaling and group.get("minReplicas", 0) == 0 and not waits:
            yield f"{where}.minReplicas", (
                f"0 GPU workers at start: set {WAIT_FOR_GPUS}=1 in the head container's env "
                "(or the job's runtime env) so the GPU check lets the autoscaler add them")
