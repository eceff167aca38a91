"""Design checks behind the fields defaults, each a repeatable command.

  python bench/fields_ablations.py autoencoder [--variants nearest bilinear l4c4 l4c4_bilinear]
      Field autoencoders at 64x compression on the NS demo data (48 trajectories of
      pipelines/ns2d_latent_diffusion.toml's solver, 40 train / 8 test), trained in-process with
      the demo schedule (20 epochs, batch 32, lr 2e-3 cosine, 2 threads): reconstruction VRMSE
      and LOLA band errors on the test frames of the forecast window (t >= 10) and on all.
  python bench/fields_ablations.py gliders [--seeds 12]
      Share of Gray-Scott trajectories per preset still patterned (std of v > 1e-3) after 2500
      time units at 64 x 64, for initial states with more/bigger or fewer/smaller blobs.
  python bench/fields_ablations.py persistence FIELDS.zarr [--context 10] [--test 8]
      The persistence baseline of a simulate stage's field store: the last context frame
      repeated, VRMSE per lead on the last --test trajectories (the evaluate stage's test set).
  python bench/fields_ablations.py gliders-area [--seeds 12]
      The gliders preset on the full profile's 128 x 128 grid to t = 6000: patterned share per
      saved frame for 1, 2, 4 and 16 blobs (16 = the default's density, 4 per 64 x 64 cells).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.solvers.gray_scott import PRESETS, GrayScottConfig, simulate_gray_scott
from latentsci.fields.metrics import spectrum_band_errors, vrmse
from latentsci.fields.solvers.navier_stokes import NavierStokesConfig, simulate_navier_stokes

VARIANTS = {
    "nearest": dict(levels=3, latent_channels=1, upsample="nearest"),
    "bilinear": dict(levels=3, latent_channels=1, upsample="bilinear"),
    "l4c4": dict(levels=4, latent_channels=4, upsample="nearest"),
    "l4c4_bilinear": dict(levels=4, latent_channels=4, upsample="bilinear"),
}
SEEDINGS = {"8 blobs of 5.3 cells (before)": (8, 0.01 * 64 / 12),
            "4 blobs of 3 cells (default)": (4, 0.03)}


def ns_frames() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train frames, test frames of the forecast window (t >= 10), all test frames."""
    config = NavierStokesConfig(resolution=64, viscosity=[1e-3], dt=4e-3, t_final=20.0,
                                frames=20)
    w = simulate_navier_stokes(config, list(range(48)), [1e-3] * 48).numpy()
    return (w[:40].reshape(-1, 1, 64, 64), w[40:, 10:].reshape(-1, 1, 64, 64),
            w[40:].reshape(-1, 1, 64, 64))


def train_autoencoder(train: np.ndarray, epochs: int = 20, batch: int = 32, lr: float = 2e-3,
                      **sizes) -> torch.nn.Module:
    """The demo schedule in one process (what the Ray Train stage does on one worker)."""
    torch.manual_seed(0)
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=16, blocks=1,
                                                           **sizes))
    model.fit_scale(train[:256])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    x = torch.from_numpy(train)
    for epoch in range(epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for b in range(len(x) // batch):
            loss = model(x[order[b * batch : (b + 1) * batch]])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
    return model.eval()


def autoencoder(variants: list[str]) -> None:
    """One table row per variant."""
    torch.set_num_threads(2)
    train, window, everything = ns_frames()
    print("| variant | ratio | VRMSE t>=10 | bands t>=10 (low/mid/high) | VRMSE all | train s |")
    print("|---|---:|---:|---|---:|---:|")
    for name in variants:
        started = time.perf_counter()
        model = train_autoencoder(train, **VARIANTS[name])
        seconds = time.perf_counter() - started
        scores = []
        with torch.no_grad():
            for frames in (window, everything):
                recon = model.reconstruct(torch.from_numpy(frames)).numpy()
                bands = spectrum_band_errors(recon, frames)
                scores.append((float(vrmse(recon, frames).mean()),
                               "/".join(f"{np.nanmean(v):.3g}" for v in bands.values())))
        print(f"| {name} | {model.compression_ratio((64, 64)):g}x | {scores[0][0]:.4f} | "
              f"{scores[0][1]} | {scores[1][0]:.4f} | {seconds:.0f} |", flush=True)


def gliders(seeds: int) -> None:
    """Patterned share per preset for each initial-state seeding."""
    torch.set_num_threads(2)
    print("| initial state | " + " | ".join(PRESETS) + " |")
    print("|---|" + "---:|" * len(PRESETS))
    for label, (blobs, width) in SEEDINGS.items():
        config = GrayScottConfig(resolution=64, warmup=1000.0, t_final=1500.0, frames=1,
                                 seeds_per_field=blobs, blob_width=width)
        names = [p for p in PRESETS for _ in range(seeds)]
        v = simulate_gray_scott(config, list(range(seeds)) * len(PRESETS), names)[:, -1, 1]
        alive = (v.flatten(1).std(1) > 1e-3).float().reshape(len(PRESETS), seeds).mean(1)
        print(f"| {label} | " + " | ".join(f"{a:.2f}" for a in alive.tolist()) + " |",
              flush=True)


def gliders_area(seeds: int) -> None:
    """Gliders on 128 x 128: how the number of blobs decides whether the pattern survives."""
    torch.set_num_threads(2)
    print("| blobs on 128 x 128 | patterned share at t = 2000 / 3000 / 4000 / 5000 / 6000 |")
    print("|---:|---|")
    for blobs in (1, 2, 4, None):
        config = GrayScottConfig(resolution=128, warmup=1000.0, t_final=5000.0, frames=5,
                                 seeds_per_field=blobs)
        v = simulate_gray_scott(config, list(range(seeds)), ["gliders"] * seeds)[:, :, 1]
        alive = (v.flatten(2).std(2) > 1e-3).float().mean(0)
        label = f"{config.blobs()}" + (" (default density)" if blobs is None else "")
        print(f"| {label} | " + " / ".join(f"{a:.2f}" for a in alive.tolist()) + " |", flush=True)


def persistence(path: str, context: int, test: int) -> None:
    """VRMSE per lead of repeating frame context - 1, on the store's last `test` trajectories."""
    from latentsci.fields.data.sources import open_fields

    source = open_fields(path)
    truth = source.read(np.arange(source.shape[0] - test, source.shape[0]))
    pred = np.repeat(truth[:, context - 1 : context], truth.shape[1] - context, axis=1)
    by_lead = vrmse(pred, truth[:, context:]).mean(axis=(0, 2))
    leads = [1, 10, 20, 30, 40, len(by_lead)]
    print(" / ".join(f"lead {k}: {by_lead[k - 1]:.3f}" for k in leads if k <= len(by_lead)))


def main() -> None:
    """Pick the check from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="check", required=True)
    ae = sub.add_parser("autoencoder")
    ae.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    gl = sub.add_parser("gliders")
    gl.add_argument("--seeds", type=int, default=12)
    area = sub.add_parser("gliders-area")
    area.add_argument("--seeds", type=int, default=12)
    still = sub.add_parser("persistence")
    still.add_argument("fields")
    still.add_argument("--context", type=int, default=10)
    still.add_argument("--test", type=int, default=8)
    args = parser.parse_args()
    if args.check == "autoencoder":
        autoencoder(args.variants)
    elif args.check == "gliders":
        gliders(args.seeds)
    elif args.check == "persistence":
        persistence(args.fields, args.context, args.test)
    else:
        gliders_area(args.seeds)


if __name__ == "__main__":
    main()
