"""Pipeline files: every mistake refused before work with one exact line; stable config ids."""

import textwrap

import pytest

from latentsci.errors import ConfigError
from latentsci.pipeline.hashing import flatten, hashable
from latentsci.pipeline.spec import check_stage_names, downstream, load_pipeline, plan
from workflows.molecules import STAGES

from conftest import write_pipeline


def _plan(path):
    return plan(load_pipeline(path), STAGES)


def _error(path) -> str:
    with pytest.raises(ConfigError) as err:
        _plan(path)
    return str(err.value)


def test_plan_orders_stages_and_gives_ids(tmp_path, smiles_file):
    planned = _plan(write_pipeline(tmp_path, smiles_file))
    assert [p.name for p in planned] == ["ingest", "fingerprints"]
    assert all(len(p.config_hash) == 12 for p in planned)
    assert planned[0].config.source == smiles_file.resolve()


def test_ids_are_stable_and_follow_config_and_input_content(tmp_path, smiles_file):
    first = [p.config_hash for p in _plan(write_pipeline(tmp_path, smiles_file))]
    assert first == [p.config_hash for p in _plan(write_pipeline(tmp_path, smiles_file))]
    other = [p.config_hash for p in _plan(write_pipeline(tmp_path, smiles_file,
                                                         "keep_largest_fragment = false"))]
    assert other[0] != first[0] and other[1] != first[1]  # downstream id follows upstream id
    smiles_file.write_text(smiles_file.read_text() + "CCCl\n")
    edited = [p.config_hash for p in _plan(write_pipeline(tmp_path, smiles_file))]
    assert edited[0] != first[0]


def test_unknown_key(tmp_path, smiles_file):
    path = write_pipeline(tmp_path, smiles_file, "smiles_colum = 'x'")
    assert _error(path) == (
        f"{path}: stages.ingest.smiles_colum: unknown key (expected one of: source, format, "
        "smiles_column, carry_columns, keep_largest_fragment, max_heavy_atoms, deduplicate, "
        "id_prefix, batch_size, limit, split)")


def test_unknown_nested_key(tmp_path, smiles_file):
    path = write_pipeline(tmp_path, smiles_file, fp=False)
    path.write_text(path.read_text().replace("seed", "x").replace("} }", "}, sed = 1 }"))
    assert _error(path) == (f"{path}: stages.ingest.split.sed: unknown key "
                            "(expected one of: method, fractions, seed)")


def test_wrong_type(tmp_path, smiles_file):
    path = write_pipeline(tmp_path, smiles_file, fp=False)
    path.write_text(path.read_text().replace("batch_size = 4", 'batch_size = "four"'))
    assert _error(path) == (f"{path}: stages.ingest.batch_size: expected a valid integer, "
                            "unable to parse string as an integer, got 'four'")


def test_missing_input_file(tmp_path):
    path = write_pipeline(tmp_path, tmp_path / "absent.smi", fp=False)
    assert _error(path) == f"{path}: stages.ingest.source: no such file '{tmp_path / 'absent.smi'}'"


def test_bad_fractions(tmp_path, smiles_file):
    path = write_pipeline(tmp_path, smiles_file, fp=False)
    path.write_text(path.read_text().replace("test = 0.2", "test = 0.3"))
    assert _error(path) == f"{path}: stages.ingest.split: fractions must sum to 1, got 1.1"


def _write(tmp_path, body):
    path = tmp_path / "p.toml"
    path.write_text(textwrap.dedent(body))
    return path


def test_unknown_kind_and_need_and_cycle(tmp_path):
    head = '[pipeline]\nname = "p"\nworkflow = "molecules"\n'
    path = _write(tmp_path, head + '[stages.a]\nkind = "trian"\n')
    assert _error(path) == (f"{path}: stages.a.kind: unknown stage kind 'trian' (workflow "
                            "'molecules' offers: ingest, fingerprints, train, codec, encode, "
                            "sample, evaluate, interpolate, ood_fit, ood_gate, probe, structure, "
                            "benchmark)")
    path = _write(tmp_path, head + '[stages.a]\nkind = "fingerprints"\nneeds = ["b"]\n')
    assert _error(path) == f"{path}: stages.a.needs: no stage named 'b'"
    path = _write(tmp_path, head + '[stages.a]\nkind = "fingerprints"\nneeds = ["b"]\n'
                  '[stages.b]\nkind = "fingerprints"\nneeds = ["a"]\n')
    assert _error(path) == f"{path}: stages: dependency cycle a -> b -> a"


def test_header_errors(tmp_path):
    path = _write(tmp_path, '[pipeline]\nname = "p"\n[stages.a]\nkind = "ingest"\n')
    assert _error(path) == f"{path}: pipeline.workflow: missing (required)"
    path = _write(tmp_path, '[pipeline]\nname = 3\nworkflow = "molecules"\n')
    assert _error(path) == f"{path}: pipeline.name: expected str, got 3"
    path = _write(tmp_path, 'stagez = 1\n')
    assert _error(path) == f"{path}: stagez: unknown key (expected: pipeline, stages, profiles)"
    path = _write(tmp_path, '[pipeline\n')
    assert _error(path).startswith(f"{path}: not valid TOML: ")
    assert _error(tmp_path / "none.toml") == f"{tmp_path / 'none.toml'}: no such pipeline file"


def test_force_names_and_downstream(tmp_path, smiles_file):
    spec = load_pipeline(write_pipeline(tmp_path, smiles_file))
    assert downstream(spec, {"ingest"}) == {"ingest", "fingerprints"}
    assert downstream(spec, {"fingerprints"}) == {"fingerprints"}
    with pytest.raises(ConfigError) as err:
        check_stage_names(spec, {"trian"}, "--force")
    assert str(err.value) == f"--force trian: {spec.path} has no such stage (stages: ingest, fingerprints)"


def test_profiles_override_stage_parameters(tmp_path, smiles_file):
    path = write_pipeline(tmp_path, smiles_file)
    path.write_text(path.read_text() + textwrap.dedent("""
        [profiles.full.stages.fingerprints]
        n_bits = 256
        [profiles.bad.stages.nope]
        n_bits = 1
    """))
    plain, full = plan(load_pipeline(path), STAGES), plan(load_pipeline(path, "full"), STAGES)
    assert plain[1].config.n_bits == 32 and full[1].config.n_bits == 256
    assert plain[0].config_hash == full[0].config_hash != "" and plain[1].config_hash != full[1].config_hash
    with pytest.raises(ConfigError) as err:
        load_pipeline(path, "fast")
    assert str(err.value) == f"{path}: profiles.fast: no such profile (profiles: full, bad)"
    with pytest.raises(ConfigError) as err:
        load_pipeline(path, "bad")
    assert str(err.value) == f"{path}: profiles.bad.stages.nope: no stage named 'nope'"


def test_train_properties_must_be_ingest_columns(tmp_path):
    path = _write(tmp_path, '[pipeline]\nname = "p"\nworkflow = "molecules"\n'
                  '[stages.t]\nkind = "train"\n[stages.t.model]\nproperties = ["qed", "potency"]\n')
    assert _error(path) == (f"{path}: stages.t.model: unknown property 'potency' in "
                            "model.properties (known: mw, logp, qed, sa, tpsa, heavy_atoms)")


def test_execution_settings_stay_out_of_the_stage_id(tmp_path, smiles_file):
    """Workers, resources and checkpoint cadence change how a stage runs, not its result: a rerun
    with other values keeps a finished stage and resumes an interrupted one."""
    head = (f'[pipeline]\nname = "p"\nworkflow = "molecules"\n[stages.i]\nkind = "ingest"\n'
            f'source = "{smiles_file}"\n[stages.t]\nkind = "train"\nneeds = ["i"]\n')

    def ids(train_body: str) -> list[str]:
        return [p.config_hash for p in _plan(_write(tmp_path, head + train_body + "\n"))]

    base = ids("epochs = 2")
    assert ids("epochs = 2\nnum_workers = 4\nuse_gpu = true\ncheckpoint_every_steps = 9\n"
               "cpus_per_worker = 2\nmax_failures = 3\nmixed_precision = false") == base
    assert ids("epochs = 3") != base and ids("epochs = 2\nlr = 0.01") != base
    planned = _plan(_write(tmp_path, head + "num_workers = 4\n"))
    assert planned[1].config.num_workers == 4  # still a setting the stage receives
    assert flatten(hashable(planned[1].config))["num_workers"] == 4  # and logs as a parameter
