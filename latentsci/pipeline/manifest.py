"""The run manifest: which stages finished, with which config id and outputs (JSON, atomic)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from latentsci.pipeline.stage import StageRecord
from latentsci.storage.location import address, exists

FILENAME = "manifest.json"


class Manifest:
    """Finished stages of one run directory; saved whole, atomically, after each stage."""

    def __init__(self, run_dir: Path, pipeline: str, stages: dict[str, StageRecord]):
        self.path = Path(run_dir) / FILENAME
        self.pipeline = pipeline
        self.stages = stages

    @classmethod
    def load(cls, run_dir: Path, pipeline: str) -> Manifest:
        """The run directory's manifest, or an empty one for a new run."""
        path = Path(run_dir) / FILENAME
        if not path.exists():
            return cls(run_dir, pipeline, {})
        data = json.loads(path.read_text())
        return cls(run_dir, pipeline, {n: StageRecord(**r) for n, r in data["stages"].items()})

    def finished(self, name: str, config_hash: str) -> StageRecord | None:
        """The record of a stage finished with this exact config id whose outputs still exist."""
        record = self.stages.get(name)
        if record is None or record.config_hash != config_hash:
            return None
        if not all(exists(address(p)) for p in record.outputs.values()):
            return None
        return record

    def record(self, record: StageRecord) -> None:
        """Add a finished stage and save."""
        self.stages[record.name] = record
        self.save()

    def forget(self, name: str) -> None:
        """Drop a stage about to rerun, so a crash leaves it marked unfinished."""
        if self.stages.pop(name, None) is not None:
            self.save()

    def save(self) -> None:
        """Write to a temporary file and rename: readers never see a half-written manifest."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"pipeline": self.pipeline,
                "stages": {n: asdict(r) for n, r in self.stages.items()}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
