"""Join a Ray cluster, or start the embedded one: the same code path either way.

With no address (and no RAY_ADDRESS) the driver starts a local Ray sized to the machine, bound
to loopback, token auth left as Ray sets it. `--address HOST:PORT`, `auto` or RAY_ADDRESS join an
existing cluster instead; an unreachable one is refused in a second with one line.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from latentsci.errors import ClusterError

LOOPBACK = "127.0.0.1"


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


def embedded_env() -> dict[str, str]:
    """Environment that keeps every listener of a local Ray on loopback."""
    return {"RAY_NODE_IP_ADDRESS": LOOPBACK}


def connect(address: str | None = None, num_cpus: int | None = None) -> ClusterInfo:
    """Join the given cluster or start the embedded one; reuse Ray if already initialised."""
    import ray

    owned = not ray.is_initialized()
    if owned:
        target = resolve_address(address)
        if target is None:
            os.environ.update(embedded_env())
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                     _node_ip_address=LOOPBACK, log_to_driver=True,
                     configure_logging=False)
        else:
            check_reachable(target)
            try:
                ray.init(address=target, log_to_driver=True)
            except (ConnectionError, RuntimeError) as exc:
                raise ClusterError(f"cannot join Ray cluster at {target}: "
                                   f"{str(exc).splitlines()[0]}") from None
    resources = ray.cluster_resources()
    return ClusterInfo(address=ray.get_runtime_context().gcs_address,
                       embedded=resolve_address(address) is None,
                       cpus=resources.get("CPU", 0), gpus=resources.get("GPU", 0), owned=owned)


def disconnect() -> None:
    """Shut down this driver's Ray (and the embedded cluster, if the driver started it)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
