"""Shapes of the core Kubernetes objects the recipes use (pod templates, Deployment, Service,
Secret, PersistentVolumeClaim, ConfigMap), written from the Kubernetes API reference for just the
fields the recipes set; the other fields of each object are known by name and left unchecked."""

from __future__ import annotations

from recipecheck.shape import (ANYTHING, BOOL, INT, NON_NEGATIVE, QUANTITY, STR, ListOf, MapOf,
                               Obj, Shape, obj, one_of)


def known(shape: Obj, *names: str) -> Obj:
    """`shape` plus fields the API has that the recipes leave alone (accepted, not checked)."""
    return Obj({**shape.fields, **{n: ANYTHING for n in names}}, shape.required)


METADATA = known(obj("name", name=STR, namespace=STR, labels=MapOf(), annotations=MapOf()),
                 "generateName", "finalizers", "ownerReferences")
TEMPLATE_METADATA = obj(labels=MapOf(), annotations=MapOf())

KEY_REF = obj("name key", name=STR, key=STR, optional=BOOL)
ENV_VAR = obj("name", name=STR, value=STR, valueFrom=known(
    obj(secretKeyRef=KEY_REF, configMapKeyRef=KEY_REF), "fieldRef", "resourceFieldRef"))
RESOURCES = known(obj(requests=MapOf(QUANTITY), limits=MapOf(QUANTITY)), "claims")
PORT = obj("containerPort", containerPort=INT, name=STR, protocol=one_of("TCP", "UDP", "SCTP"))
MOUNT = known(obj("name mountPath", name=STR, mountPath=STR, readOnly=BOOL, subPath=STR),
              "mountPropagation", "subPathExpr", "recursiveReadOnly")
HTTP_PROBE = known(obj(httpGet=obj("port", path=STR, port=ANYTHING)),
                   "initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold",
                   "successThreshold", "exec", "tcpSocket", "grpc", "terminationGracePeriodSeconds")
SECURITY = known(obj(runAsNonRoot=BOOL, runAsUser=INT, allowPrivilegeEscalation=BOOL,
                     readOnlyRootFilesystem=BOOL, capabilities=obj(drop=ListOf(STR),
                                                                    add=ListOf(STR))),
                 "runAsGroup", "privileged", "seccompProfile", "seLinuxOptions", "procMount",
                 "appArmorProfile", "windowsOptions")
CONTAINER = known(
    obj("name", name=STR, image=STR, imagePullPolicy=one_of("Always", "IfNotPresent", "Never"),
        command=ListOf(STR), args=ListOf(STR), env=ListOf(ENV_VAR), ports=ListOf(PORT),
        resources=RESOURCES, volumeMounts=ListOf(MOUNT), readinessProbe=HTTP_PROBE,
        livenessProbe=HTTP_PROBE, securityContext=SECURITY, workingDir=STR),
    "envFrom", "lifecycle", "startupProbe", "stdin", "stdinOnce", "tty", "volumeDevices",
    "terminationMessagePath", "terminationMessagePolicy", "resizePolicy", "restartPolicy")
VOLUME = known(
    obj("name", name=STR,
        persistentVolumeClaim=obj("claimName", claimName=STR, readOnly=BOOL),
        secret=known(obj("secretName", secretName=STR, defaultMode=INT), "items", "optional"),
        configMap=known(obj("name", name=STR, defaultMode=INT), "items", "optional"),
        emptyDir=obj(medium=one_of("", "Memory"), sizeLimit=QUANTITY)),
    "hostPath", "nfs", "csi", "projected", "ephemeral", "downwardAPI")
TOLERATION = obj("key", key=STR, operator=one_of("Exists", "Equal"), value=STR,
                 effect=one_of("NoSchedule", "PreferNoSchedule", "NoExecute"),
                 tolerationSeconds=INT)
POD_SPEC = known(
    obj("containers", containers=ListOf(CONTAINER), volumes=ListOf(VOLUME),
        tolerations=ListOf(TOLERATION), nodeSelector=MapOf(),
        restartPolicy=one_of("Always", "OnFailure", "Never"), serviceAccountName=STR,
        securityContext=known(obj(fsGroup=INT, runAsNonRoot=BOOL, runAsUser=INT),
                              "runAsGroup", "seccompProfile", "supplementalGroups", "sysctls"),
        automountServiceAccountToken=BOOL, terminationGracePeriodSeconds=NON_NEGATIVE),
    "affinity", "initContainers", "imagePullSecrets", "priorityClassName", "schedulerName",
    "topologySpreadConstraints", "hostNetwork", "dnsPolicy", "runtimeClassName",
    "enableServiceLinks")
POD_TEMPLATE = obj("spec", metadata=TEMPLATE_METADATA, spec=POD_SPEC)


def kind(api: str, name: str, spec: Shape | None = None, **extra: Shape) -> Obj:
    """A top-level object: apiVersion and kind fixed, metadata, and its own fields."""
    fields: dict[str, Shape] = {"apiVersion": one_of(api), "kind": one_of(name),
                                "metadata": METADATA, **extra}
    if spec is not None:
        fields["spec"] = spec
    return Obj(fields, frozenset({"apiVersion", "kind", "metadata"}))


SERVICE_PORT = obj("port", name=STR, port=INT, targetPort=ANYTHING,
                   protocol=one_of("TCP", "UDP", "SCTP"))
SERVICE = kind("v1", "Service", known(
    obj("ports", type=one_of("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
        selector=MapOf(), ports=ListOf(SERVICE_PORT)),
    "clusterIP", "sessionAffinity", "externalTrafficPolicy", "ipFamilyPolicy", "loadBalancerIP",
    "externalIPs", "loadBalancerSourceRanges"))
DEPLOYMENT = kind("apps/v1", "Deployment", known(
    obj("selector template", replicas=NON_NEGATIVE,
        selector=obj("matchLabels", matchLabels=MapOf()), template=POD_TEMPLATE,
        strategy=obj(type=one_of("Recreate", "RollingUpdate"))),
    "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds", "paused"))
SECRET = kind("v1", "Secret", None, type=STR, stringData=MapOf(), data=MapOf(), immutable=BOOL)
CONFIG_MAP = kind("v1", "ConfigMap", None, data=MapOf(), immutable=BOOL)
PVC = kind("v1", "PersistentVolumeClaim", known(
    obj("accessModes resources",
        accessModes=ListOf(one_of("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany",
                                  "ReadWriteOncePod")),
        storageClassName=STR, resources=obj("requests", requests=MapOf(QUANTITY))),
    "volumeMode", "volumeName", "selector", "dataSource", "dataSourceRef"))

CORE_KINDS: dict[str, Obj] = {"Service": SERVICE, "Deployment": DEPLOYMENT, "Secret": SECRET,
                              "ConfigMap": CONFIG_MAP, "PersistentVolumeClaim": PVC}


def containers(pod_template: object) -> list[dict]:
    """The containers of a pod template (mappings only), for rules that look inside them."""
    spec = pod_template.get("spec") if isinstance(pod_template, dict) else None
    found = spec.get("containers") if isinstance(spec, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def env_of(container: dict) -> dict[str, dict]:
    """A container's env entries by name."""
    env = container.get("env")
    return {e["name"]: e for e in env if isinstance(e, dict) and isinstance(e.get("name"), str)
            } if isinstance(env, list) else {}
