"""The field autoencoder behind the codec contract: frames (n, channel, x, y) in and out, and each
frame's reconstruction error as its VRMSE (The Well's definition) averaged over channels.

An autoencoder is fully convolutional, so its latent shape depends on the grid it encodes: a
field codec is bound to one frame shape, recorded in the checkpoint by the training stage or given
to `load_codec(path, frame_shape=(channels, x, y))`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from latentsci.fields.networks.autoencoder import FieldAutoencoder
from latentsci.fields.networks.checkpoint import AUTOENCODER_KIND
from latentsci.inference import in_chunks
from latentsci.fields.metrics import vrmse
from latentsci.inference import evaluating
from latentsci.fields.domain import FIELD_PIECES
from latentsci.latent.codec import CodecError, Encoded, register_codec, to_latent, weights_sha256
from latentsci.latent.domain import register_domain

VERSION = "1"


class FieldCodec:
    """A FieldAutoencoder seen as a codec of frames on one grid."""

    kind = AUTOENCODER_KIND
    version = VERSION

    def __init__(self, model: FieldAutoencoder, frame_shape: Sequence[int], source: str = "",
                 weights: str = ""):
        self.model = model.eval()
        self.source = source
        self.weights_sha256 = weights
        self.frame_shape = tuple(int(v) for v in frame_shape)
        self.load_options = {"frame_shape": list(self.frame_shape)}  # what a store must record
        if len(self.frame_shape) != 3 or self.frame_shape[0] != model.channels:
            raise CodecError(f"{source or 'model'}: frame_shape {self.frame_shape} is not "
                             f"({model.channels}, x, y) for this {model.channels}-channel model")
        try:
            self.latent_shape = tuple(model.latent_shape(self.frame_shape[1:]))
        except ValueError as exc:
            raise CodecError(f"{source or 'model'}: {exc}") from None

    def _frames(self, items: Sequence | np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Frames as float32 (n, channel, x, y), and why each non-finite one cannot be read."""
        frames = np.asarray(items, dtype=np.float32)
        if frames.size == 0 and frames.ndim < 4:  # an empty batch
            frames = frames.reshape(0, *self.frame_shape)
        if frames.ndim != 4 or frames.shape[1:] != self.frame_shape:
            raise CodecError(f"{self.source or 'field codec'}: frames shaped {frames.shape}, "
                             f"expected (n, {', '.join(map(str, self.frame_shape))})")
        finite = np.isfinite(frames).all(axis=(1, 2, 3))
        return frames, [None if ok else "frame holds NaN or inf" for ok in finite]

    def _run(self, fn, frames: np.ndarray) -> np.ndarray:
        """fn over frames in chunks, in eval mode without gradients."""
        with evaluating(self.model):
            return in_chunks(fn, torch.from_numpy(frames)).numpy()

    def encode(self, items: Sequence | np.ndarray) -> Encoded:
        """Flat latent rows of frames; a NaN row and the reason for each non-finite frame."""
        frames, reasons = self._frames(items)
        ok = np.array([r is None for r in reasons], dtype=bool)
        out = np.full((len(frames), int(np.prod(self.latent_shape))), np.nan, dtype=np.float32)
        if ok.any():
            out[ok] = self._run(self.model.encode, frames[ok]).reshape(int(ok.sum()), -1)
        return Encoded(out, reasons)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Frames (n, channel, x, y) in physical units from flat latent rows."""
        latents = to_latent(self, z)
        if len(latents) == 0:
            return np.zeros((0, *self.frame_shape), dtype=np.float32)
        return self._run(self.model.decode, latents)

    def reconstruction_error(self, items: Sequence | np.ndarray) -> np.ndarray:
        """VRMSE of each frame's reconstruction, averaged over channels; NaN for bad frames."""
        frames, reasons = self._frames(items)
        ok = np.array([r is None for r in reasons], dtype=bool)
        out = np.full(len(frames), np.nan)
        if ok.any():
            recon = self._run(self.model.reconstruct, frames[ok])
            out[ok] = vrmse(recon, frames[ok]).mean(axis=-1)
        return out


def load_field_codec(folder: Path, meta: dict, source: str,
                     frame_shape: Sequence[int] | None = None,
                     map_location: str = "cpu") -> FieldCodec:
    """The codec of a saved field autoencoder, on the grid given or recorded at training."""
    from latentsci.fields.networks.checkpoint import load_field_autoencoder

    shape = frame_shape if frame_shape is not None else meta.get("frame_shape")
    if shape is None:
        raise CodecError(f"{folder}: this field autoencoder does not record the grid it was "
                         "trained on: pass frame_shape=(channels, x, y) to load_codec")
    model = load_field_autoencoder(folder, map_location)
    return FieldCodec(model, shape, source, weights_sha256(folder))


register_codec(AUTOENCODER_KIND, load_field_codec)
register_domain(AUTOENCODER_KIND, FIELD_PIECES)
