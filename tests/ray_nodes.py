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
# `ray start` for a worker node that stays on loopback like the head. Under Ray's single-node
# switch (which keeps the head's listeners on loopback) `ray start --address` refuses to start a
# worker node; without it, Ray swaps 127.0.0.1 in --address and --node-ip-address for the
# machine's IP, where the head does not listen. So the switch stays on for the node's processes
# and only this launcher skips both: the refusal and the swap (as ray.cluster_utils does, which
# starts nodes without the CLI).
RAY_WORKER_NODE = [sys.executable, "-c", (
    "import sys\n"
    "import ray._private.ray_constants as constants, ray._private.services as services\n"
    "constants.ENABLE_RAY_CLUSTER = True\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv[0] = 'ray'\n"
    "sys.exit(main())\n")]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LABEL = "latentsci-test-node"  # each node's name, to find its node id among nodes of one IP


@dataclass
class Node:
    """One `ray start --block` process tree, its log, and its node id once it has joined."""

    process: subprocess.Popen
    log: Path
    name: str
    node_id: str = ""

    def tail(self) -> str:
        """The end of its log, for a failure message."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, grace: float = 5) -> None:
        """Signal its process tree (SIGKILL: the machine dies) and wait until all of it is gone,
        killing what still runs after `grace` seconds (Ray's GCS takes ~30 s over a SIGTERM).

        Every process of the tree is signalled, not only the group: Ray's workers sit in process
        groups of their own, and a worker left running after its node was 'killed' could still
        write into a store under the feet of the task's retry elsewhere."""
        try:
            tree = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        for proc in tree:
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        alive = _wait_gone([self.process.pid, *(p.pid for p in tree)], grace, self.process)
        for proc in alive:  # ours, so do not leak it
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if _wait_gone([p.pid for p in alive], 10, self.process):
            raise RuntimeError(f"{self.name}: processes survive SIGKILL: {alive}")


def _wait_gone(pids: list[int], timeout: float, child: subprocess.Popen) -> list[psutil.Process]:
    """Wait up to `timeout` s for these processes to end; those still running. A zombie counts
    as ended (its parent may be the `ray start` that just died); `child`, ours, is reaped."""
    deadline = time.time() + timeout
    while True:
        child.poll()
        running = []
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    running.append(proc)
            except psutil.NoSuchProcess:
                continue
        if not running or time.time() > deadline:
            return running
        time.sleep(0.1)


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
        """A worker node joining the head, up once the head counts it alive."""
        name = f"node{len(self.nodes)}"
        # A temp dir of its own: in the head's (Ray's default), the two nodes' runtime-env agents
        # share one cache of working dirs and delete each other's, a job's cwd among them.
        node = _start(self, [f"--address={self.gcs}", f"--num-cpus={num_cpus}",
                             f"--resources={json.dumps(resources or {})}",
                             f"--temp-dir={self.temp / name}"], name, RAY_WORKER_NODE)
        _wait_alive(self, node)
        return node

    def shutdown(self) -> None:
        """Stop every node, workers first, and remove the temp folder."""
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.temp, ignore_errors=True)


def _start(cluster: Cluster, args: list[str], name: str, ray: list[str] | None = None) -> Node:
    """`ray start --block ARGS` in its own session, labelled with its name, logging to the
    cluster's temp folder."""
    log = cluster.temp / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*(ray or [RAY]), "start", "--block", "--node-ip-address=127.0.0.1", *args,
             f"--labels={LABEL}={name}", f"--dashboard-agent-listen-port={free_port()}",
             "--disable-usage-stats"],
            env=cluster.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node = Node(process, log, name)
    cluster.nodes.append(node)
    return node


def _wait_alive(cluster: Cluster, node: Node, timeout: float = 120) -> None:
    """Wait until the head counts `node` alive (found by its label) and note its node id."""
    deadline, why = time.time() + timeout, ""
    while not node.node_id:
        if node.process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{node.name} did not join the cluster: {why}\n{node.tail()}")
        try:
            node.node_id = state_query(cluster, (
                f"result = next((n.node_id for n in state.list_nodes(address="
                f"{cluster.dashboard!r}, detail=True) if n.state == 'ALIVE' and "
                f"n.labels.get({LABEL!r}) == {node.name!r}), '')"))
        except RuntimeError as exc:  # the head's state API not answering yet
            why = str(exc)[-500:]
        if not node.node_id:
            time.sleep(0.5)


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
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", dash), timeout=1).close()
                break
            except OSError:
                if head.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"ray start --head did not come up:\n{head.tail()}"
                                       ) from None
                time.sleep(0.5)
        _wait_alive(cluster, head)
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


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
