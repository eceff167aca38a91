"""The command line: one module per verb group, and verbs that mirror a stage take its defaults
from the stage's config (so `sample` and the sample stage cannot drift apart again)."""

import subprocess

from latentsci.cli import build_parser
from latentsci.molecules.stages.encode import EncodeConfig
from latentsci.molecules.stages.evaluate import EvaluateConfig
from latentsci.molecules.stages.sample import SampleConfig

from conftest import cli_env, latentsci_cmd


def test_every_verb_is_offered():
    verbs = build_parser()._subparsers._group_actions[0].choices
    assert list(verbs) == ["run", "submit", "status", "logs", "query", "interpolate", "ood",
                           "encode", "sample", "evaluate", "rollout", "score", "optimize"]


def test_verb_defaults_are_the_stage_configs_defaults():
    parse = build_parser().parse_args
    sample = parse(["sample", "--out", "s.smi"])
    config = SampleConfig()
    assert (sample.n, sample.temperature, sample.seed, sample.per_task) == (
        config.n, config.temperature, config.seed, config.per_task)
    encode = parse(["encode", "--smiles", "m.smi", "--out", "m.zarr"])
    assert encode.rows_per_shard == EncodeConfig().rows_per_shard
    evaluate = parse(["evaluate", "--samples", "s", "--train", "t", "--test", "v"])
    assert evaluate.k == EvaluateConfig().ks


def test_help_names_the_defaults_it_took(tmp_path):
    out = subprocess.run(latentsci_cmd("sample", "--help"), capture_output=True, text=True,
                         env=cli_env(), check=True).stdout
    assert "(default 1000)" in out and "default 1, as the sample stage" in " ".join(out.split())
    assert "data/models/zinc-vae-v2" in out  # the model used when --model is left out
