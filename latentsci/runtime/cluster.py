"""Join a Ray cluster, or start the embedded one: the same code path either way.

With no address (and no RAY_ADDRESS) the driver starts a local Ray sized to the machine, bound
to loopback, token auth left as Ray sets it. `--address HOST:PORT`, `auto` or RAY_ADDRESS join an
existing cluster instead; an unreachable one is refused in a second with one line.
"""

from __future__ import annotations

import math
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from latentsci.errors import ClusterError
from latentsci.runtime.signals import handlers_kept

LOOPBACK = "127.0.0.1"
SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass(frozen=True)
class ClusterInfo:
    """Where the driver's work runs, for logs and MLflow tags."""

    address: str
    embedded: bool
    cpus: float
    gpus: float
    owned: bool  # this call initialised Ray, so this driver shuts it down


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: the flag, else RAY_ADDRESS, else None for the embedded default."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Refuse an address whose GCS port does not answer, before Ray waits a minute on it."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"Ray address {address!r} is not HOST:PORT, 'auto' or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach Ray cluster at {address}: {reason}") from None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def single_node_mode() -> None:
    """Make Ray keep every listener on loopback (the embedded default and local test clusters).

    On Linux Ray swaps 127.0.0.1 for the machine's public IP and binds its servers to all
    interfaces; its single-node switch (meant for laptops) stops both. Ray reads the switch from
    the environment when first imported and passes the environment on to the processes it starts,
    so set both the variable and, if Ray is already imported, the constant it was read into.
    """
    os.environ[SINGLE_NODE_ENV] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def auth_token_source() -> str | None:
    """Where this process's Ray auth token comes from (as Ray looks for it), or None."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        if not Path(path).expanduser().is_file():
            raise ClusterError(f"RAY_AUTH_TOKEN_PATH={path}: no such file (it should hold the "
                               "cluster's auth token)")
        return f"RAY_AUTH_TOKEN_PATH={path}"
    saved = Path.home() / ".ray" / "auth_token"
    return str(saved) if saved.is_file() else None


def token_auth_env() -> None:
    """Send our Ray auth token when one exists: Ray clients only do so with RAY_AUTH_MODE=token.

    Ray reads the mode into its cached config when `ray._raylet` is first imported, so a mode
    set afterwards must also refresh that config (as Ray's own token setup does)."""
    if "RAY_AUTH_MODE" in os.environ or auth_token_source() is None:
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None:
        raylet.Config.initialize("")


def connect(address: str | None = None, num_cpus: int | None = None) -> ClusterInfo:
    """Join the given cluster or start the embedded one; reuse Ray if already initialised."""
    import ray

    owned = not ray.is_initialized()
    if owned:
        with handlers_kept():  # ray.init's C++ core sets an aborting SIGTERM handler
            _init(address, num_cpus)
    resources = ray.cluster_resources()
    return ClusterInfo(address=ray.get_runtime_context().gcs_address,
                       embedded=resolve_address(address) is None,
                       cpus=resources.get("CPU", 0), gpus=resources.get("GPU", 0), owned=owned)


def _init(address: str | None, num_cpus: int | None) -> None:
    """ray.init: the embedded cluster, or the one at the address given or recorded."""
    import ray

    target = resolve_address(address)
    if target is None:
        single_node_mode()
        # "local": a new instance, never a cluster some `ray start` recorded in /tmp/ray
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(),
                 include_dashboard=False, _node_ip_address=LOOPBACK, log_to_driver=True,
                 configure_logging=False)
    else:
        check_reachable(target)
        if is_loopback(target.rpartition(":")[0]):
            single_node_mode()
        token_auth_env()
        try:
            ray.init(address=target, log_to_driver=True)
        except (ConnectionError, RuntimeError) as exc:
            raise ClusterError(f"cannot join Ray cluster at {target}: "
                               f"{str(exc).splitlines()[0]}") from None


def gpu_shortfall(node_gpus: list[float], total: float, per_unit: float) -> str | None:
    """Why `total` GPUs in units of `per_unit` (one task or worker each) cannot all be placed
    on nodes with these GPU counts, or None; a unit must fit on one node, as Ray places it."""
    have = sum(node_gpus)
    if have < total:
        return f"asks for {total:g} GPUs, but the Ray cluster has {have:g}"
    if per_unit > 0:
        fits = sum(math.floor(g / per_unit + 1e-9) for g in node_gpus)  # 1.0 // 0.2 is 4.0
        units = math.ceil(total / per_unit - 1e-9)
        if fits < units:
            largest = max(node_gpus, default=0)
            return (f"needs {units} x {per_unit:g} GPU, each on one node, but the Ray cluster's "
                    f"nodes fit only {fits} (largest node: {largest:g} GPU)")
    return None


def require_gpus(what: str, needed: float = 1, per_unit: float | None = None) -> None:
    """Refuse a GPU request the cluster cannot meet: Ray would leave it pending forever.

    `needed` GPUs in all, in units of `per_unit` (default: one unit of `needed`) that must each
    fit on one node. Only GPUs of running nodes count; on an autoscaling cluster whose GPU nodes
    start on demand, set LATENTSCI_WAIT_FOR_GPUS=1 to let Ray wait for them instead."""
    import ray

    if not ray.is_initialized() or os.environ.get("LATENTSCI_WAIT_FOR_GPUS") == "1":
        return
    node_gpus = [float(n.get("Resources", {}).get("GPU", 0)) for n in ray.nodes() if n.get("Alive")]
    why = gpu_shortfall(node_gpus, needed, needed if per_unit is None else per_unit)
    if why:
        raise ClusterError(f"{what} {why}: turn it off, add GPU nodes, or set "
                           f"LATENTSCI_WAIT_FOR_GPUS=1 on an autoscaling cluster")


def disconnect() -> None:
    """Shut down this driver's Ray (and the embedded cluster, if the driver started it)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
