"""Stages declare the outputs they read and give: `--check` refuses a `needs` list that lacks
one before any work, the engine refuses a stage that does not return what it declared, and the
field stages' nested model configs read the older flat layout to the same stage id."""

import subprocess
import sys

import pytest

from latentsci.errors import ConfigError
from latentsci.pipeline.engine import _check_outputs
from latentsci.pipeline.spec import load_pipeline, plan, wiring
from latentsci.pipeline.stage import ONE, ONE_OR_MORE
from workflows.fields import STAGES as FIELD_STAGES
from workflows.molecules import STAGES as MOLECULE_STAGES

HEAD = '[pipeline]\nname = "p"\nworkflow = "molecules"\n'


def _write(tmp_path, body: str, name: str = "p.toml"):
    path = tmp_path / name
    path.write_text(body)
    return path


def _ingest(smiles_file, name: str = "i") -> str:
    return f'[stages.{name}]\nkind = "ingest"\nsource = "{smiles_file}"\n'


def _error(path, registry=MOLECULE_STAGES) -> str:
    with pytest.raises(ConfigError) as err:
        plan(load_pipeline(path), registry)
    return str(err.value)


def test_a_needs_list_without_a_model_is_refused_naming_the_stage(tmp_path, smiles_file):
    body = (HEAD + _ingest(smiles_file) + '[stages.t]\nkind = "train"\nneeds = ["i"]\n'
            '[stages.e]\nkind = "encode"\nneeds = ["i"]\n')
    path = _write(tmp_path, body)
    assert _error(path) == (f"{path}: stages.e.needs: kind 'encode' reads one 'codec' output, "
                            "but its needs ['i'] give 0 (stages that give it: t)")


def test_two_models_for_one_codec_role_are_refused(tmp_path, smiles_file):
    body = (HEAD + _ingest(smiles_file) + '[stages.a]\nkind = "train"\nneeds = ["i"]\n'
            '[stages.b]\nkind = "train"\nneeds = ["i"]\n'
            '[stages.s]\nkind = "sample"\nneeds = ["a", "b"]\n')
    assert "kind 'sample' reads one 'codec' output, but its needs ['a', 'b'] give 2" in \
        _error(_write(tmp_path, body))


def test_what_a_stage_reads_can_follow_its_config(tmp_path, smiles_file):
    """sample reads a latent store only when it draws from the fitted Gaussian."""
    body = (HEAD + _ingest(smiles_file) + '[stages.t]\nkind = "train"\nneeds = ["i"]\n'
            '[stages.s]\nkind = "sample"\nneeds = ["t"]\n')
    assert len(plan(load_pipeline(_write(tmp_path, body)), MOLECULE_STAGES)) == 3
    path = _write(tmp_path, body + 'latent = "aggregate"\n')
    assert "kind 'sample' reads one 'store' output, but its needs ['t'] give 0" in _error(path)


def test_check_prints_who_gives_what(tmp_path, smiles_file):
    body = (HEAD + _ingest(smiles_file) + _ingest(smiles_file, "j").replace('"ingest"\n',
                                                                           '"ingest"\nid_prefix = "j"\n')
            + '[stages.t]\nkind = "train"\nneeds = ["i"]\n'
            '[stages.e]\nkind = "encode"\nneeds = ["i", "j", "t"]\n')
    planned = plan(load_pipeline(_write(tmp_path, body)), MOLECULE_STAGES)
    line = wiring(planned)[-1]
    assert line == (f"e: encode ({planned[-1].config_hash}); reads molecules (i, j), codec (t); "
                    "gives store, rejects")
    out = subprocess.run([sys.executable, "-m", "workflows.molecules", str(tmp_path / "p.toml"),
                          "--check"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == line


def test_every_read_role_is_given_by_some_kind_of_its_workflow():
    """No stage kind requires a role that no kind of the same workflow can give (an optional
    role may be one only the other domain gives: ood_gate scores samples or a store)."""
    for registry in (MOLECULE_STAGES, FIELD_STAGES):
        given = {role for stage in registry.values() for role in stage.gives}
        for stage in registry.values():
            reads = stage.reads_for(stage.config.model_construct())
            assert {r for r, n in reads.items() if n in (ONE, ONE_OR_MORE)} <= given, stage.kind


def test_a_stage_that_does_not_return_a_declared_output_is_an_error(tmp_path):
    (tmp_path / "m").mkdir()
    _check_outputs("s", {"codec": str(tmp_path / "m")}, ("codec",))
    with pytest.raises(RuntimeError, match="stage s: declares output 'store' but did not return"):
        _check_outputs("s", {"codec": str(tmp_path / "m")}, ("codec", "store"))


FIELDS = """[pipeline]
name = "f"
workflow = "fields"
[stages.sim]
kind = "simulate"
generator = "gray_scott"
trajectories = 4
[stages.ae]
kind = "train_autoencoder"
needs = ["sim"]
epochs = 2
{ae}
[stages.enc]
kind = "encode"
needs = ["sim", "ae"]
[stages.flow]
kind = "train_surrogate"
needs = ["enc"]
{flow}
"""


def test_flat_field_model_keys_read_as_the_nested_model(tmp_path):
    flat = FIELDS.format(ae='width = 8\nupsample = "nearest"',
                         flow='objective = "deterministic"\nhistory = 3\nwidth = 16')
    nested = FIELDS.format(ae='[stages.ae.model]\nwidth = 8\nupsample = "nearest"',
                           flow='[stages.flow.model]\nkind = "deterministic"\n'
                                '[stages.flow.model.denoiser]\nhistory = 3\nwidth = 16')
    old = plan(load_pipeline(_write(tmp_path, flat, "flat.toml")), FIELD_STAGES)
    new = plan(load_pipeline(_write(tmp_path, nested, "nested.toml")), FIELD_STAGES)
    assert [p.config_hash for p in old] == [p.config_hash for p in new]
    ae, flow = new[1].config, new[3].config
    assert (ae.model.width, ae.model.upsample, ae.model.channels) == (8, "nearest", None)
    assert (flow.model.kind, flow.model.denoiser.history, flow.model.denoiser.width) == \
        ("deterministic", 3, 16)
    # the stage and the model config no longer disagree on the decoder's upsampling
    default = plan(load_pipeline(_write(tmp_path, FIELDS.format(ae="", flow=""), "d.toml")),
                   FIELD_STAGES)[1].config
    assert default.model.upsample == "bilinear"


def test_a_field_model_key_given_flat_and_nested_is_refused(tmp_path):
    body = FIELDS.format(ae='width = 8\n[stages.ae.model]\nwidth = 16', flow="")
    path = _write(tmp_path, body)
    assert _error(path, FIELD_STAGES) == (f"{path}: stages.ae: 'width' is given twice: as "
                                          "'width' and as 'model.width'")
