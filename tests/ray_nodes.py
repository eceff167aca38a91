"""Real Ray nodes on loopback for the cluster tests: a `ray start --head` with the job API and
token auth, worker nodes joining it, each stopped (or killed, as a failing machine) by its own
process group only, never by `ray stop`, which would also stop the test session's own Ray."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    """One `ray start --block` process tree and its log."""

    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        """The end of its log, for a failure message."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal its whole process group (SIGKILL: the machine dies) and wait for the tree."""
        try:
            tree = [psutil.Process(self.process.pid),
                    *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        psutil.wait_procs(tree, timeout=30)
        self.process.wait(timeout=30)


@dataclass
class Cluster:
    """A head node (GCS, job API) and the worker nodes that joined it, on loopback."""

    temp: Path
    gcs: str
    dashboard: str
    token: str
    env: dict[str, str]
    nodes: list[Node] = field(default_factory=list)

    def add_node(self, num_cpus: int = 1, resources: dict | None = None) -> Node:
        """A worker node joining the head, up once the head counts it."""
        before = len(alive_nodes(self))
        index = len(self.nodes)
        node = _start(self, [f"--address={self.gcs}", f"--num-cpus={num_cpus}",
                             f"--resources={json.dumps(resources or {})}"], f"node{index}")
        deadline = time.time() + 120
        while len(alive_nodes(self)) <= before:
            if node.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"worker node did not join:\n{node.tail()}")
            time.sleep(1)
        return node

    def shutdown(self) -> None:
        """Stop every node, workers first, and remove the temp folder."""
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)


def _start(cluster: Cluster, args: list[str], name: str) -> Node:
    """`ray start --block ARGS` in its own session, logging to the cluster's temp folder."""
    log = cluster.temp / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [RAY, "start", "--block", "--node-ip-address=127.0.0.1", *args,
             f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats"],
            env=cluster.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node = Node(process, log)
    cluster.nodes.append(node)
    return node


def start_head(base_env: dict[str, str], num_cpus: int = 1, resources: dict | None = None,
               extra_env: dict[str, str] | None = None) -> Cluster:
    """A head node with the job API on loopback and token auth on, up once it answers."""
    # Short path: Ray's unix sockets live under it and AF_UNIX paths stop at 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))
    port, dash, token = free_port(), free_port(), secrets.token_hex(16)
    env = dict(base_env, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=token,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               **(extra_env or {}))
    cluster = Cluster(temp, f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}", token, env)
    head = _start(cluster, ["--head", f"--port={port}", "--dashboard-host=127.0.0.1",
                            f"--dashboard-port={dash}", "--include-dashboard=true",
                            f"--num-cpus={num_cpus}", f"--resources={json.dumps(resources or {})}",
                            f"--temp-dir={temp}", f"--ray-client-server-port={free_port()}"],
                  "head")
    deadline = time.time() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", dash), timeout=1).close()
            return cluster
        except OSError:
            if head.process.poll() is not None or time.time() > deadline:
                cluster.shutdown()
                raise RuntimeError(f"ray start --head did not come up:\n{head.tail()}") from None
            time.sleep(1)


def state_query(cluster: Cluster, code: str) -> object:
    """Run Ray's state API against the cluster in a separate process (this one has its own Ray
    and token) and return what `code` leaves in `result`, as JSON."""
    script = ("import json\nfrom ray.util import state\n" + code
              + "\nprint(json.dumps(result, default=str))\n")
    out = subprocess.run([sys.executable, "-c", script], env=cluster.env, capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"state query failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def alive_nodes(cluster: Cluster) -> list[str]:
    """Node ids the head counts as alive."""
    return state_query(cluster, f"result = [n.node_id for n in state.list_nodes("
                                f"address={cluster.dashboard!r}) if n.state == 'ALIVE']")


def task_nodes(cluster: Cluster, name: str) -> list[dict]:
    """Every attempt of the tasks named `name`: node id, state and attempt number."""
    return state_query(cluster, (
        f"result = [dict(node=t.node_id, state=t.state, attempt=t.attempt_number, "
        f"task=t.task_id) for t in state.list_tasks(address={cluster.dashboard!r}, "
        f"filters=[('name', '=', {name!r})], limit=10000, detail=True, raise_on_missing_output="
        f"False)]"))
