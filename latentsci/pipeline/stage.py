"""What a stage is: a typed config, a run function, and what it hands to the stages after it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from latentsci.errors import InputDataError
from latentsci.runtime.console import say


class StageConfig(BaseModel):
    """Base of every stage's parameters: unknown keys are refused, values are frozen.

    `execution_fields` name the settings that say how a stage runs (workers, resources,
    checkpoint cadence), not what it computes: they stay out of the stage's id, so changing them
    keeps a finished stage and lets an interrupted one resume instead of starting over."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    execution_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A misspelt execution field would silently stay in the id: refuse it at import."""
        super().__pydantic_init_subclass__(**kwargs)
        unknown = cls.execution_fields - set(cls.model_fields)
        if unknown:
            raise TypeError(f"{cls.__name__}.execution_fields names no field: {sorted(unknown)}")


def _resolved(path: Path, info: ValidationInfo) -> Path:
    """A path resolved against the pipeline file's folder (relative paths are relative to it)."""
    base = (info.context or {}).get("base_dir", Path.cwd())
    return path if path.is_absolute() else Path(base) / path


def _existing_file(path: Path, info: ValidationInfo) -> Path:
    """Resolve a path against the pipeline file's folder and insist the file is there."""
    full = _resolved(path, info)
    if not _probe(full, Path.is_file):
        raise ValueError(f"no such file '{full}'")
    return full.resolve()


def _probe(path: Path, test) -> bool:
    """`test(path)` (is_file, exists), turning a path the system refuses to look up (a name too
    long, a null byte) into a validation error rather than a crash."""
    try:
        return test(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read '{str(path)[:80]}...': "
                         f"{getattr(exc, 'strerror', None) or exc}") from None


InputFile = Annotated[Path, AfterValidator(_existing_file)]
"""A path to an existing input file; hashed by content, not by name."""


def _existing_path(path: Path, info: ValidationInfo) -> Path:
    """Resolve a file or folder (a Zarr store) against the pipeline file's folder; it must exist."""
    full = _resolved(path, info)
    if not _probe(full, Path.exists):
        raise ValueError(f"no such file or folder '{full}'")
    return full.resolve()


InputPath = Annotated[Path, AfterValidator(_existing_path)]
"""A path to an existing file or folder (folders are identified by path, not content)."""


@dataclass
class StageRecord:
    """A finished stage as the manifest keeps it and later stages see it."""

    name: str
    kind: str
    config_hash: str
    outputs: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    finished_at: str = ""
    seconds: float = 0.0


@dataclass
class StageResult:
    """What a stage's run function returns: output paths, summary metrics, files to attach."""

    outputs: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)


@dataclass
class StageContext:
    """Everything a running stage may use besides its config."""

    name: str
    out_dir: Path
    inputs: dict[str, StageRecord]
    config_hash: str = ""
    mlflow_run_id: str = ""
    progress: bool = False
    state_dir: Path | None = None  # survives a crashed attempt (checkpoints to resume from)
    tracker: Any = None  # the driver's Tracker: stages run in the driver, so they may log
    store_dir: Path | str | None = None  # out_dir in the run directory (a URL on object storage)
    copy: Any = None  # the run directory's WorkingCopy (None: the run directory is local)
    local_state_dir: Path | None = None  # state_dir on this machine (its twin for a URL run
    # directory): for files the driver's own tasks keep between attempts; cleared by --force

    def shared(self, path: str | Path) -> str:
        """How Ray tasks on any node reach a file or folder of the run directory the driver
        reads locally (a model folder, say): on object storage it is uploaded now (if it changed)
        and its URL returned; otherwise the path itself."""
        if self.copy is None or "://" in str(path):
            return str(path)
        if Path(path).is_relative_to(self.copy.local):
            self.copy.push(Path(path))
        return str(self.copy.address_of(path))

    def store_address(self, name: str) -> Path | str:
        """Where this stage's store `name` goes: in the run directory itself, written in place
        by the workers (on object storage, a URL; a local run, a folder in out_dir)."""
        from latentsci.storage.location import join

        return join(self.store_dir if self.store_dir is not None else self.out_dir, name)

    def provenance(self) -> dict[str, str]:
        """What a stage stamps on the stores it writes, to trace them back to this run."""
        return {"stage": self.name, "config_hash": self.config_hash,
                "mlflow_run_id": self.mlflow_run_id}

    def epoch_logger(self, epochs: int, show: tuple[str, ...]) -> Callable[[dict], None]:
        """A training stage's per-epoch callback: the epoch's numbers to this stage's MLflow run
        (step = epoch) and one console line with the `show` metrics, while training runs."""
        def log(row: dict) -> None:
            epoch = int(row["epoch"])
            if self.tracker is not None and self.mlflow_run_id:
                self.tracker.log_step(self.mlflow_run_id,
                                      {k: v for k, v in row.items() if k != "epoch"}, epoch)
            shown = ", ".join(f"{k} {row[k]:.4g}" for k in show
                              if isinstance(row.get(k), float | int))
            say(f"[{self.name}] epoch {epoch + 1}/{epochs}: {shown}")
        return log

    def input(self, stage: str) -> StageRecord:
        """The record of an upstream stage this one declared in `needs`."""
        return self.inputs[stage]

    def givers(self, role: str) -> list[StageRecord]:
        """The needed stages that gave an output called `role`, in `needs` order."""
        return [rec for rec in self.inputs.values() if role in rec.outputs]

    def output(self, role: str) -> str:
        """The one needed stage output called `role` (`--check` has made sure there is one)."""
        found = self.givers(role)
        if len(found) != 1:
            raise InputDataError(f"stage {self.name}: needs exactly one stage with a {role!r} "
                                 f"output (found {len(found)})")
        return found[0].outputs[role]


ONE, ONE_OR_MORE, OPTIONAL, ANY = "one", "one or more", "at most one", "any number"
"""How many needed stages must give an output role (the values of `Stage.reads`)."""

Reads = Mapping[str, str] | Callable[[Any], Mapping[str, str]]


@dataclass(frozen=True)
class Stage:
    """A stage kind any workflow may offer: `kind` in a pipeline file selects it.

    `reads` names the output roles it takes from the stages in its `needs` and how many of each
    (or, for roles that depend on the config, a function of the config that says); `gives` names
    the outputs it returns. `--check` matches the two before any work starts."""

    kind: str
    config: type[StageConfig]
    run: Callable[[Any, StageContext], StageResult]
    version: str = "1"  # bump when outputs change for the same config, so old results rerun
    reads: Reads = field(default_factory=dict)
    gives: tuple[str, ...] = ()

    def reads_for(self, config: StageConfig) -> Mapping[str, str]:
        """The roles this stage reads under `config`, with how many of each."""
        return self.reads(config) if callable(self.reads) else self.reads


def stage_kinds(*stages: Stage) -> dict[str, Stage]:
    """A workflow's registry of the stage kinds it offers, keyed by kind (each kind once)."""
    kinds: dict[str, Stage] = {}
    for stage in stages:
        if stage.kind in kinds:
            raise ValueError(f"stage kind {stage.kind!r} offered twice")
        kinds[stage.kind] = stage
    return kinds


def nested_keys(moves: Mapping[str, tuple[str, ...]]) -> Callable[[Any], Any]:
    """A before-validator that takes the flat keys of an older config layout to their nested
    place (e.g. `width` -> `model.width`), so pipeline files written for it still run."""
    def move(data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, path in moves.items():
            if old not in data:
                continue
            value, target = data.pop(old), data
            for part in path[:-1]:
                inner = target.get(part, {})
                target[part] = dict(inner.model_dump() if isinstance(inner, BaseModel) else inner)
                target = target[part]
            if path[-1] in target:
                raise ValueError(f"{old!r} is given twice: as {old!r} and as {'.'.join(path)!r}")
            target[path[-1]] = value
        return data
    return move
