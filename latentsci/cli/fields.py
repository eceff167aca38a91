"""The field verb: `rollout`, forecasting fields with a trained latent surrogate."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentsci.cli.args import verb


def cmd_rollout(args: argparse.Namespace) -> int:
    """Forecast fields with a trained latent surrogate from a user's initial frames."""
    from latentsci.fields.forecast.forecasts import rollout_to_zarr

    out = rollout_to_zarr(args.surrogate, args.initial, args.steps, args.out, args.members,
                          args.start, args.seed)
    print(f"wrote {args.steps} forecast steps to {out}")
    return 0


def add_verbs(verbs) -> None:
    """rollout."""
    ro = verb(verbs, "rollout", cmd_rollout, "forecast fields with a trained latent surrogate",
              ["--surrogate runs/ns2d/stages/flow-ID/model --initial fields.zarr --steps 40 "
               "--out forecast.zarr --members 8"])
    ro.add_argument("--surrogate", required=True, help="surrogate model folder")
    ro.add_argument("--initial", required=True,
                    help="field array (Zarr or The Well HDF5) or an encoded latent store")
    ro.add_argument("--steps", type=int, required=True, help="how many steps to forecast")
    ro.add_argument("--out", type=Path, required=True, help="new Zarr field store to write")
    ro.add_argument("--members", type=int, default=1, help="ensemble members (flow surrogates)")
    ro.add_argument("--start", type=int, help="first frame to forecast; the frames before it "
                    "are the history (default: right after the frames the surrogate needs)")
    ro.add_argument("--seed", type=int, default=0)
