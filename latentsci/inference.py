"""Run a torch module for inference without changing the mode its caller left it in."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode (batch norm's running statistics, no dropout) and no gradients for the block,
    then the caller's mode back, so a model a training loop holds still predicts
    deterministically."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def inference(method):
    """`evaluating(self)` around a method of a module (encode, decode, predict)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with evaluating(self):
            return method(self, *args, **kwargs)

    return wrapper


def in_chunks(fn, frames: torch.Tensor, size: int = 256) -> torch.Tensor:
    """fn over the first axis in chunks, so a large batch (of frames, of z) fits in memory."""
    return torch.cat([fn(frames[s : s + size]) for s in range(0, len(frames), size)])
