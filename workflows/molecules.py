"""Molecule workflow: ingest SMILES files, learn a latent space, write latent stores, generate.

Story of a run, one stage kind per step (each lives in `latentsci.molecules.stages`):
1. `ingest` reads SMILES files, fans RDKit parsing out over Ray tasks, and writes a
   de-duplicated, split Parquet table with a reject report (gives `molecules`);
2. `fingerprints` turns the tables it needs into a model-free baseline latent store of Morgan
   counts, each Ray task writing its own whole shards (reads `molecules`, gives `store`);
3. `train` learns the graph-to-SELFIES VAE data-parallel on Ray Train, resuming when rerun
   (reads `molecules`, gives `codec`);
4. `encode` writes every molecule's latent mean and std into a latent store (reads `molecules`
   and one `codec`, gives `store`);
5. `sample` decodes new molecules from the prior or a Gaussian fitted to a store (reads one
   `codec`, gives `samples`);
6. `evaluate` scores the samples with the MOSES metrics and reconstructs held-out molecules
   (reads `molecules`, `samples` and a `codec`, gives `metrics`);
7. `interpolate` (a kind of the latent package, for any codec) decodes paths between pairs of a
   store's molecules and scores them (reads `store`, gives `interpolation` and `paths`);
8. `ood_fit` fits an out-of-distribution detector on an encoded store's training rows and
   reports how it separates held-out molecules from shifted sets (reads `store`s, gives
   `detector`); `ood_gate` keeps or rejects samples with it (reads `detector` and `samples`).
`probe` reads properties off frozen latents with ridge/logistic and MLP models over
group-aware splits, next to the domain's baseline features; `structure` scores how the latents
cluster by known classes (k-means ARI, silhouettes) and their MIG/DCI against known factors.
`benchmark` runs the PMO protocol (methods x tasks x seeds under a budget of oracle calls,
AUC of the top-k curves) with the molecule objectives, resumable (gives `benchmark`).
A `codec` stage hands a model trained elsewhere (the shipped one, another run's) to the stages
that read a `codec`, in place of `train`.
"""

from __future__ import annotations

import sys

from latentsci.latent.stages.codec import CODEC
from latentsci.latent.stages.interpolate import INTERPOLATE
from latentsci.latent.stages.ood import OOD_FIT, OOD_GATE
from latentsci.latent.stages.probe import PROBE
from latentsci.latent.stages.structure import STRUCTURE
from latentsci.molecules.stages.benchmark import BENCHMARK
from latentsci.molecules.stages.encode import ENCODE
from latentsci.molecules.stages.evaluate import EVALUATE
from latentsci.molecules.stages.fingerprints import FINGERPRINTS
from latentsci.molecules.stages.ingest import INGEST
from latentsci.molecules.stages.sample import SAMPLE
from latentsci.molecules.stages.train import TRAIN
from latentsci.pipeline.driver import main
from latentsci.pipeline.stage import stage_kinds

STAGES = stage_kinds(INGEST, FINGERPRINTS, TRAIN, CODEC, ENCODE, SAMPLE, EVALUATE,
                     INTERPOLATE, OOD_FIT, OOD_GATE, PROBE,
                     STRUCTURE, BENCHMARK)

if __name__ == "__main__":
    sys.exit(main(STAGES, prog="python -m workflows.molecules"))
