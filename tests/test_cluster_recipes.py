"""The recipes of cluster/, checked offline the way their consumers read them: the KubeRay
manifests against a strict schema and the operator's rules, the `ray up` files through Ray's own
prepare/validate, each RayCluster through Ray's own autoscaling-config derivation; the versions
they name are the project's pins, nothing is public, nothing secret is written down; and the
broken recipes under tests/data/cluster_broken fail with the message each one expects."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT / "cluster"))

from recipecheck import check_paths, kind_of, recipe_files  # noqa: E402
from recipecheck.artifacts import logical_lines  # noqa: E402
from recipecheck.policy import (pins, pod_templates, secret_findings,  # noqa: E402
                                version_findings)
from recipecheck.ray_own import offered_resources, prepare_launcher, runtime_env  # noqa: E402

CLUSTER = ROOT / "cluster"
BROKEN = ROOT / "tests" / "data" / "cluster_broken"
RECIPES = {"kuberay/raycluster.yaml", "kuberay/rayjob.yaml", "kuberay/secret.yaml",
           "kuberay/storage.yaml", "launcher/onprem.yaml", "launcher/aws.yaml",
           "images/latentsci.Dockerfile", "mlflow/Dockerfile", "mlflow/requirements.txt",
           "mlflow/kubernetes.yaml", "mlflow/secret.yaml", "mlflow/mlflow.service"}


def documents(relative: str) -> list[dict]:
    """The YAML documents of a recipe."""
    return [d for d in yaml.safe_load_all((CLUSTER / relative).read_text()) if d]


def all_documents() -> list[dict]:
    """Every YAML document under cluster/."""
    return [d for p in recipe_files() if kind_of(p) == "yaml"
            for d in yaml.safe_load_all(p.read_text()) if d]


def test_every_recipe_passes_the_checker():
    present = {str(p.relative_to(CLUSTER)) for p in recipe_files()}
    assert RECIPES <= present
    assert [str(p) for p in check_paths([CLUSTER])] == []


def test_the_checker_is_a_command_with_one_line_per_problem(capsys, monkeypatch):
    import check

    monkeypatch.chdir(ROOT)
    assert check.main([]) == 0
    assert re.fullmatch(r"\d+ files checked: no problems\n", capsys.readouterr().out)
    bad = subprocess.run([sys.executable, "cluster/check.py", "--deploy",
                          "tests/data/cluster_broken/min_over_max.yaml",
                          "cluster/launcher/aws.yaml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = bad.stdout.splitlines()
    assert bad.returncode == 1 and bad.stderr == ""
    assert all(re.match(r"(tests/data/cluster_broken/min_over_max\.yaml|cluster/launcher/aws\.yaml"
                        r"): [^:]+(: [^:]+)?: ", line) for line in lines), lines
    assert "cluster/launcher/aws.yaml: line 15: placeholder YOUR_AWS_REGION is still there" in lines


@pytest.mark.parametrize("fixture", sorted(p.name for p in BROKEN.iterdir()))
def test_broken_recipe_fails_with_its_message(fixture):
    path = BROKEN / fixture
    expected = re.findall(r"^# expect: (.+)$", path.read_text(), re.MULTILINE)
    found = [str(p) for p in check_paths([path])]
    assert expected and found
    prefix = f"tests/data/cluster_broken/{fixture}: "
    assert all(line.startswith(prefix) and "\n" not in line for line in found)
    for message in expected:
        assert any(line.startswith(prefix + message) for line in found), (message, found)


def test_launcher_files_pass_rays_prepare_and_validate():
    aws = prepare_launcher(documents("launcher/aws.yaml")[0])
    types = aws["available_node_types"]
    assert aws["head_node_type"] == "head" and types["head"]["resources"] == {"CPU": 0}
    assert types["cpu"]["resources"] == {"CPU": 16} and types["cpu"]["min_workers"] == 0
    assert types["gpu"]["resources"] == {"CPU": 8, "GPU": 1}
    assert types["gpu"]["docker"]["worker_image"].endswith("latentsci:2.60.0-py311-gpu")
    onprem = prepare_launcher(documents("launcher/onprem.yaml")[0])
    # Ray's local provider: one node type, each machine offering what `ray start` detects
    assert list(onprem["available_node_types"]) == ["local.cluster.node"]
    for config in (aws, onprem):
        starts = [c for key in ("head_start_ray_commands", "worker_start_ray_commands")
                  for c in config[key] if "ray start" in c]
        assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in starts)
        assert "--dashboard-host=127.0.0.1" in starts[0]
        assert "~/.ray/auth_token" in config["file_mounts"]


@pytest.mark.parametrize("recipe", ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"])
def test_kuberay_groups_offer_what_the_autoscaler_expects(recipe):
    offered = offered_resources(documents(recipe)[0])
    assert offered["headgroup"]["CPU"] == 0 and "GPU" not in offered["headgroup"]
    assert offered["cpu"]["CPU"] == 8 and "GPU" not in offered["cpu"]
    assert offered["gpu"]["CPU"] == 8 and offered["gpu"]["GPU"] == 1


@pytest.mark.parametrize("recipe", ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"])
def test_gpu_group_lands_on_gpu_nodes_and_the_driver_waits_for_it(recipe):
    document = documents(recipe)[0]
    spec = document["spec"].get("rayClusterSpec", document["spec"])
    gpu = next(g for g in spec["workerGroupSpecs"] if g["groupName"] == "gpu")
    resources = gpu["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["minReplicas"] == 0 and spec["enableInTreeAutoscaling"] is True
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["template"]["spec"]["tolerations"])
    head_env = {e["name"]: e.get("value")
                for e in spec["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]}
    job_env = (runtime_env(document["spec"].get("runtimeEnvYAML")) or {}).get("env_vars", {})
    assert "1" in (head_env.get("LATENTSCI_WAIT_FOR_GPUS"), job_env.get("LATENTSCI_WAIT_FOR_GPUS"))
    assert spec["authOptions"] == {"mode": "token", "secretName": "latentsci-ray-token"}


def test_rayjob_resumes_from_a_run_directory_every_pod_shares():
    job = documents("kuberay/rayjob.yaml")[0]["spec"]
    assert job["shutdownAfterJobFinishes"] is True and job["ttlSecondsAfterFinished"] > 0
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] >= 1
    run_dir = re.search(r"--run-dir (\S+)", job["entrypoint"]).group(1)
    pods = [job["rayClusterSpec"]["headGroupSpec"], *job["rayClusterSpec"]["workerGroupSpecs"]]
    for pod in pods:
        spec = pod["template"]["spec"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
                  if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        shared = [path for path, name in mounts.items() if claims.get(name) == "latentsci-runs"]
        assert any(run_dir.startswith(path + "/") for path in shared), pod
    storage = documents("kuberay/storage.yaml")[0]
    assert storage["metadata"]["name"] == "latentsci-runs"
    assert storage["spec"]["accessModes"] == ["ReadWriteMany"]


def test_runtime_env_yaml_keys_are_what_ray_knows():
    from ray.runtime_env import RuntimeEnv

    env = runtime_env(documents("kuberay/rayjob.yaml")[0]["spec"]["runtimeEnvYAML"])
    assert env and set(env) <= RuntimeEnv.known_fields
    RuntimeEnv(**env)  # Ray's own validation of each field
    # Ray itself takes a misspelt key for a plugin's name and keeps quiet: why the check exists
    assert RuntimeEnv(workdir="/app").plugins() == [("workdir", "/app")]


def test_versions_named_anywhere_are_the_project_pins():
    wanted = pins()
    assert (wanted["ray"], wanted["torch"], wanted["mlflow"], wanted["python"]) == (
        "2.60.0", "2.13.0", "3.17.2", "3.11")
    texts = {p: p.read_text() for p in recipe_files()}
    assert [(str(p), f) for p, t in texts.items() for f in version_findings(t)] == []
    named = "\n".join(texts.values())
    for needle in ("rayproject/ray:${RAY_VERSION}", "RAY_VERSION=2.60.0", "PYTHON=py311",
                   'rayVersion: "2.60.0"', "latentsci:2.60.0-py311-gpu", "mlflow==3.17.2",
                   "python:3.11"):
        assert needle in named  # the scan above is not vacuous
    driver = re.search(r"^psycopg2-binary==(\d+\.\d+\.\d+)$",
                       (CLUSTER / "mlflow/requirements.txt").read_text(), re.MULTILINE)
    assert driver is not None  # the PostgreSQL driver is pinned exactly


def test_images_resolve_to_the_pinned_ray_image_in_both_flavours():
    text = (CLUSTER / "images/latentsci.Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    base = re.search(r"^FROM (\S+)$", text, re.MULTILINE).group(1)
    for flavour in ("cpu", "gpu"):
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: {**args, "FLAVOUR": flavour}[m.group(1)], base)
        assert resolved == f"rayproject/ray:2.60.0-py311-{flavour}"
    installs = [line for _, line in logical_lines(text) if "pip install" in line]
    assert all("-c constraints.txt" in line for line in installs) and len(installs) == 2
    assert "download.pytorch.org/whl/$build" in installs[0] and "TORCH_CUDA=cu128" in text
    ignored = (CLUSTER / "images/latentsci.Dockerfile.dockerignore").read_text().split()
    assert ignored[ignored.index("*") + 1:][:1] == ["!constraints.txt"]  # allowlist, not .venv


def test_no_service_is_reachable_from_outside_the_cluster():
    services, clusters = [], []
    for document in all_documents():
        if document.get("kind") == "Service":
            services.append(document["spec"].get("type", "ClusterIP"))
        if document.get("kind") in ("RayCluster", "RayJob"):
            spec = document["spec"].get("rayClusterSpec", document["spec"])
            clusters.append(spec["headGroupSpec"].get("serviceType", "ClusterIP"))
            assert spec["headGroupSpec"].get("enableIngress") is not True
    assert services == ["ClusterIP"] and clusters == ["ClusterIP", "ClusterIP"]


def test_no_secret_value_is_written_in_cluster():
    found = [(str(p), f) for p in recipe_files() for f in secret_findings(p.read_text())]
    assert found == []
    # ... and the scan would see one: literal values, credentials in URIs, token shapes
    assert secret_findings("PGPASSWORD=s3cr3t-value") and secret_findings(
        "uri: postgresql://mlflow:pa55word@db/mlflow") and secret_findings(
        "auth_token: " + "0123456789abcdef" * 2) and secret_findings("key AKIA" + "A" * 16)
    for harmless in ("auth_token: ${RAY_AUTH_TOKEN}", "PGPASSWORD=YOUR_DB_PASSWORD",
                     "secretName: latentsci-ray-token", "RAY_AUTH_TOKEN_PATH=/var/run/token",
                     'export RAY_AUTH_TOKEN="$(kubectl get secret x)"'):
        assert list(secret_findings(harmless)) == [], harmless
    # secrets reach pods through secretKeyRef only
    secret_env = []
    for document in all_documents():
        for _, template in pod_templates(document):
            for container in template["spec"]["containers"]:
                secret_env += [(e["name"], "valueFrom" in e) for e in container.get("env", [])
                               if re.search(r"PASSWORD|TOKEN|SECRET", e["name"])]
    assert secret_env and all(from_secret for _, from_secret in secret_env), secret_env


def test_mlflow_server_is_authenticated_on_postgres_and_names_its_service():
    deployment = next(d for d in documents("mlflow/kubernetes.yaml") if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = dict(a.split("=", 1) for a in container["args"])
    assert args["--app-name"] == "basic-auth"
    assert args["--backend-store-uri"].startswith("postgresql+psycopg2://mlflow@")
    assert "mlflow:5000" in args["--allowed-hosts"].split(",")
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
               if "valueFrom" in e}
    assert secrets == {"PGPASSWORD": "mlflow-server", "MLFLOW_AUTH_ADMIN_PASSWORD": "mlflow-server",
                       "MLFLOW_FLASK_SERVER_SECRET_KEY": "mlflow-server"}
    unit = (CLUSTER / "mlflow/mlflow.service").read_text()
    assert "Environment=MLFLOW_HOST=127.0.0.1" in unit and "EnvironmentFile=" in unit
    assert "--app-name basic-auth" in unit and "--allowed-hosts ${MLFLOW_ALLOWED_HOSTS}" in unit


def test_cluster_readme_walks_through_every_recipe():
    readme = (CLUSTER / "README.md").read_text()
    for recipe in RECIPES:
        assert f"cluster/{recipe}" in readme, recipe
    for section in ("## What every node must share", "## Security", "## What the suite cannot try"):
        assert section in readme
    assert "python cluster/check.py" in readme


def test_nothing_the_project_starts_binds_beyond_loopback():
    sources = [*(ROOT / "latentsci").rglob("*.py"), *(ROOT / "workflows").rglob("*.py")]
    wildcard = [str(p) for p in sources
                if re.search(r"0\.0\.0\.0|host=['\"]::['\"]", p.read_text())]
    assert wildcard == []
    driver = (ROOT / "latentsci/pipeline/driver.py").read_text()
    assert re.search(r"mlflow ui --backend-store-uri \S+ --host 127\.0\.0\.1", driver)
    cluster = (ROOT / "latentsci/runtime/cluster.py").read_text()
    assert '_node_ip_address=LOOPBACK' in cluster and 'LOOPBACK = "127.0.0.1"' in cluster


def test_submit_refuses_to_ship_a_tracking_password(monkeypatch):
    from latentsci.errors import ClusterError
    from latentsci.jobs import forwarded_env

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://latentsci:hunter2@mlflow:5000")
    with pytest.raises(ClusterError, match="MLFLOW_TRACKING_URI carries a password"):
        forwarded_env()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "from-a-secret")
    assert forwarded_env() == {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}  # never the password
