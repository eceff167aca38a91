"""The thin Ray layer: join or start a cluster, fan work out over tasks."""

from latentsci.runtime.cluster import ClusterInfo, connect, disconnect, require_gpus
from latentsci.runtime.fanout import map_batches, show_progress

__all__ = ["ClusterInfo", "connect", "disconnect", "map_batches", "require_gpus", "show_progress"]
