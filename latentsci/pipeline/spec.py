"""Pipeline files: TOML naming stages, their parameters and what each needs; checked before work."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from latentsci.errors import ConfigError, one_line
from latentsci.pipeline.hashing import stage_hash
from latentsci.pipeline.stage import ANY, ONE, ONE_OR_MORE, OPTIONAL, Stage, StageConfig

HEADER_KEYS = {"name": str, "workflow": str, "description": str}
STAGE_KEYS = ("kind", "needs")


@dataclass
class StageSpec:
    """One `[stages.NAME]` table as written: kind, needs, and the raw parameters."""

    name: str
    kind: str
    needs: list[str]
    params: dict[str, Any]


@dataclass
class PipelineSpec:
    """A parsed pipeline file, not yet checked against a workflow's stage kinds."""

    path: Path
    name: str
    workflow: str
    description: str
    stages: dict[str, StageSpec] = field(default_factory=dict)

    def error(self, key: str, what: str) -> ConfigError:
        """The one-line error every config mistake becomes: file, dotted key, what was expected."""
        return ConfigError(one_line(f"{self.path}: {key}: {what}"))


@dataclass
class PlannedStage:
    """A stage ready to run: validated config and its stable id."""

    name: str
    stage: Stage
    config: StageConfig
    needs: list[str]
    config_hash: str


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse TOML, turning a missing file or a syntax error into one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigError(one_line(f"{path}: no such pipeline file")) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(one_line(f"{path}: not UTF-8 text ({exc.reason} at byte "
                                   f"{exc.start})")) from None
    except OSError as exc:
        raise ConfigError(one_line(f"{path}: cannot read: {exc.strerror or exc}")) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(one_line(f"{path}: not valid TOML: {exc}")) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(one_line(f"{path}: not valid TOML: nested too deeply")) from None


def _check_type(spec: PipelineSpec, key: str, value: Any, expected: type) -> Any:
    """Refuse a header or stage key of the wrong type, naming it."""
    if not isinstance(value, expected):
        raise spec.error(key, f"expected {expected.__name__}, got {value!r}")
    return value


def _merge(base: dict, override: dict) -> dict:
    """Tables merged key by key (override wins); other values replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_profile(spec: PipelineSpec, data: dict, profile: str | None) -> dict:
    """The file's stages with `[profiles.NAME.stages...]` overrides merged in."""
    profiles = _check_type(spec, "profiles", data.get("profiles", {}), dict)
    if profile is None:
        return data
    if profile not in profiles:
        raise spec.error(f"profiles.{profile}", "no such profile (profiles: "
                         f"{', '.join(profiles) or 'none'})")
    override = _check_type(spec, f"profiles.{profile}", profiles[profile], dict)
    for key in override:
        if key != "stages":
            raise spec.error(f"profiles.{profile}.{key}", "unknown key (expected: stages)")
    for name in _check_type(spec, f"profiles.{profile}.stages", override.get("stages", {}), dict):
        if name not in data.get("stages", {}):
            raise spec.error(f"profiles.{profile}.stages.{name}", f"no stage named {name!r}")
    return _merge(data, override)


def load_pipeline(path: str | Path, profile: str | None = None) -> PipelineSpec:
    """Read a pipeline file's structure (header, stage tables, needs) with one-line errors;
    `profile` merges that profile's stage overrides in first."""
    path = Path(path)
    data = _read_toml(path)
    spec = PipelineSpec(path, "", "", "")
    for key in data:
        if key not in ("pipeline", "stages", "profiles"):
            raise spec.error(key, "unknown key (expected: pipeline, stages, profiles)")
    data = _apply_profile(spec, data, profile)
    header = _check_type(spec, "pipeline", data.get("pipeline", {}), dict)
    for key, value in header.items():
        if key not in HEADER_KEYS:
            raise spec.error(f"pipeline.{key}", f"unknown key (expected: {', '.join(HEADER_KEYS)})")
        _check_type(spec, f"pipeline.{key}", value, HEADER_KEYS[key])
    for key in ("name", "workflow"):
        if key not in header:
            raise spec.error(f"pipeline.{key}", "missing (required)")
    spec.name, spec.workflow = header["name"], header["workflow"]
    spec.description = header.get("description", "")
    stages = _check_type(spec, "stages", data.get("stages", {}), dict)
    if not stages:
        raise spec.error("stages", "no stages defined")
    for name, table in stages.items():
        table = dict(_check_type(spec, f"stages.{name}", table, dict))
        kind = _check_type(spec, f"stages.{name}.kind", table.pop("kind", None) or "", str)
        if not kind:
            raise spec.error(f"stages.{name}.kind", "missing (required)")
        needs = _check_type(spec, f"stages.{name}.needs", table.pop("needs", []), list)
        spec.stages[name] = StageSpec(name, kind, [str(n) for n in needs], table)
    return spec


def topological_order(spec: PipelineSpec) -> list[str]:
    """Stage names so each comes after what it needs (file order among equals); refuses cycles."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = " -> ".join([*trail[trail.index(name):], name])
            raise spec.error("stages", f"dependency cycle {cycle}")
        state[name] = "open"
        for need in spec.stages[name].needs:
            if need not in spec.stages:
                raise spec.error(f"stages.{name}.needs", f"no stage named {need!r}")
            visit(need, [*trail, name])
        state[name] = "done"
        order.append(name)

    for name in spec.stages:
        visit(name, [])
    return order


def check_stage_names(spec: PipelineSpec, names: set[str], flag: str) -> None:
    """Refuse a command-line stage name (e.g. --force) the pipeline does not have."""
    unknown = sorted(names - set(spec.stages))
    if unknown:
        raise ConfigError(f"{flag} {unknown[0]}: {spec.path} has no such stage "
                          f"(stages: {', '.join(spec.stages)})")


def downstream(spec: PipelineSpec, roots: set[str]) -> set[str]:
    """The given stages and every stage that depends on them, directly or not."""
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for name, stage in spec.stages.items():
            if name not in found and found.intersection(stage.needs):
                found.add(name)
                changed = True
    return found


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The nested config model a pydantic error location points into, if any."""
    for part in loc:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(info, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _describe(error: dict, model: type[BaseModel]) -> str:
    """Pydantic's message for one error, reworded as what was expected."""
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        inner = _model_at(model, error["loc"][:-1])
        allowed = ", ".join(inner.model_fields) if inner else "none"
        return f"unknown key (expected one of: {allowed})"
    if kind == "missing":
        return "missing (required)"
    msg = msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        msg = "expected " + msg.removeprefix("Input should be ") + f", got {error['input']!r}"
    return msg


def validate_stage(spec: PipelineSpec, stage_spec: StageSpec, stage: Stage) -> StageConfig:
    """Build a stage's typed config, or raise one line naming file, dotted key and expectation."""
    try:
        return stage.config.model_validate(stage_spec.params,
                                           context={"base_dir": spec.path.parent})
    except ValidationError as exc:
        error = exc.errors()[0]
        keys = [p for p in error["loc"] if not (isinstance(p, str) and "[" in p)]  # union tags
        dotted = ".".join(str(p) for p in ("stages", stage_spec.name, *keys))
        raise spec.error(dotted, _describe(error, stage.config)) from None


_COUNTS = {ONE: lambda n: n == 1, ONE_OR_MORE: lambda n: n >= 1,
           OPTIONAL: lambda n: n <= 1, ANY: lambda n: True}


def _givers(needs: list[str], role: str, gives: dict[str, tuple[str, ...]]) -> list[str]:
    """The stages of `needs` whose kind gives `role`."""
    return [n for n in needs if role in gives.get(n, ())]


def check_reads(spec: PipelineSpec, stage_spec: StageSpec, stage: Stage, config: StageConfig,
                registry: dict[str, Stage]) -> None:
    """Refuse a `needs` list whose stages do not give the outputs this stage reads."""
    gives = {n: registry[s.kind].gives for n, s in spec.stages.items() if s.kind in registry}
    for role, count in stage.reads_for(config).items():
        givers = _givers(stage_spec.needs, role, gives)
        if _COUNTS[count](len(givers)):
            continue
        others = [n for n, g in gives.items() if role in g and n != stage_spec.name]
        hint = f" (stages that give it: {', '.join(others)})" if others else ""
        raise spec.error(f"stages.{stage_spec.name}.needs",
                         f"kind {stage.kind!r} reads {count} {role!r} output, but its needs "
                         f"{stage_spec.needs} give {len(givers)}{hint}")


def plan(spec: PipelineSpec, registry: dict[str, Stage]) -> list[PlannedStage]:
    """Check every stage against the workflow's kinds and give each its config id, in run order."""
    planned: dict[str, PlannedStage] = {}
    for name in topological_order(spec):
        stage_spec = spec.stages[name]
        stage = registry.get(stage_spec.kind)
        if stage is None:
            raise spec.error(f"stages.{name}.kind", f"unknown stage kind {stage_spec.kind!r} "
                             f"(workflow {spec.workflow!r} offers: {', '.join(registry)})")
        config = validate_stage(spec, stage_spec, stage)
        check_reads(spec, stage_spec, stage, config, registry)
        inputs = {n: planned[n].config_hash for n in stage_spec.needs}
        digest = stage_hash(stage.kind, stage.version, config, inputs)
        planned[name] = PlannedStage(name, stage, config, list(stage_spec.needs), digest)
    return list(planned.values())


def wiring(planned: list[PlannedStage]) -> list[str]:
    """One line per stage for `--check`: its kind and id, which stage gives each output it
    reads, and what it gives."""
    gives = {p.name: p.stage.gives for p in planned}
    lines = []
    for stage in planned:
        found = {role: _givers(stage.needs, role, gives)
                 for role in stage.stage.reads_for(stage.config)}
        reads = [f"{role} ({', '.join(names)})" for role, names in found.items() if names]
        given = f"; gives {', '.join(stage.stage.gives)}" if stage.stage.gives else ""
        lines.append(f"{stage.name}: {stage.stage.kind} ({stage.config_hash})"
                     f"{'; reads ' + ', '.join(reads) if reads else ''}{given}")
    return lines
