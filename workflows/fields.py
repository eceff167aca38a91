"""Fields workflow: simulate PDE trajectories, compress them, learn a latent surrogate, evaluate.

Story of a run, one stage kind per step (each lives in `latentsci.fields.stages`):
1. `simulate` fans a solver out over Ray tasks into a Zarr field store, or `import_fields`
   checks a user's Zarr/HDF5 array (gives `fields` and the train/test `split`);
2. `train_autoencoder` learns a periodic conv autoencoder on Ray Train, the codec between frames
   and latent grids (reads `fields` and `split`, gives `codec`);
3. `encode` writes every frame's latent into a latent store (reads `fields`, `codec` and
   `split`, gives `store`);
4. `train_surrogate` learns the next latent from the last few, by flow matching or a
   deterministic baseline of the same network (reads `store`, gives `surrogate`);
5. `evaluate` rolls the surrogates out on the test trajectories and scores them against the
   solver (reads `store` and the `surrogate`s, gives `metrics`);
6. `interpolate` (a kind of the latent package, for any codec) decodes paths between pairs of a
   store's frames and scores them (reads `store`, gives `interpolation` and `paths`);
7. `ood_fit` fits an out-of-distribution detector on a store's training frames and reports how
   it separates held-out frames from the stores of shifted simulations (other viscosities,
   forcing, presets) encoded by the same codec (reads `store`s, gives `detector`); `ood_gate`
   keeps or rejects a store's rows with it.
`probe` reads properties off frozen latents with ridge/logistic and MLP models over
group-aware splits, next to the domain's baseline features; `structure` scores how the latents
cluster by known classes (k-means ARI, silhouettes) and their MIG/DCI against known factors.
A `codec` stage hands an autoencoder trained elsewhere to the stages that read a `codec`.
"""

from __future__ import annotations

import sys

from latentsci.fields.stages.autoencoder import TRAIN_AUTOENCODER
from latentsci.fields.stages.encode import ENCODE
from latentsci.fields.stages.evaluate import EVALUATE
from latentsci.fields.stages.inputs import IMPORT_FIELDS, SIMULATE
from latentsci.fields.stages.surrogate import TRAIN_SURROGATE
from latentsci.latent.stages.codec import CODEC
from latentsci.latent.stages.interpolate import INTERPOLATE
from latentsci.latent.stages.ood import OOD_FIT, OOD_GATE
from latentsci.latent.stages.probe import PROBE
from latentsci.latent.stages.structure import STRUCTURE
from latentsci.pipeline.driver import main
from latentsci.pipeline.stage import stage_kinds

STAGES = stage_kinds(SIMULATE, IMPORT_FIELDS, TRAIN_AUTOENCODER, ENCODE, TRAIN_SURROGATE, EVALUATE,
                     INTERPOLATE, CODEC, OOD_FIT, OOD_GATE, PROBE,
                     STRUCTURE)

if __name__ == "__main__":
    sys.exit(main(STAGES, prog="python -m workflows.fields"))
