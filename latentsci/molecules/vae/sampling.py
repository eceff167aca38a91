"""Decoding strategies for the SELFIES decoder: greedy or temperature sampling, batched."""

from __future__ import annotations

import torch

from latentsci.molecules.vae.decoder import SelfiesDecoder

BOS_ID, EOS_ID = 1, 2


@torch.no_grad()
def decode_tokens(decoder: SelfiesDecoder, z: torch.Tensor, max_len: int,
                  temperature: float = 0.0, generator: torch.Generator | None = None,
                  first_allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Token ids (batch, <= max_len) for each z; temperature 0 is greedy (argmax).

    `first_allowed` (bool over the vocabulary) limits the first token, e.g. to atoms: a sequence
    of only branch/ring tokens would decode to an empty molecule.
    """
    state = decoder.initial_state(z)
    token = torch.full((z.shape[0], 1), BOS_ID, dtype=torch.long, device=z.device)
    done = torch.zeros(z.shape[0], dtype=torch.bool, device=z.device)
    out = []
    for position in range(max_len):
        logits, state = decoder.step(token, z, state)
        logits = logits[:, -1]
        logits[:, 0] = -torch.inf  # never emit padding
        logits[:, BOS_ID] = -torch.inf
        if position == 0:
            logits[:, EOS_ID] = -torch.inf  # an empty sequence is no molecule
            if first_allowed is not None:
                logits[:, ~first_allowed.to(logits.device)] = -torch.inf
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator)
        else:
            token = logits.argmax(dim=-1, keepdim=True)
        token = torch.where(done[:, None], torch.full_like(token, EOS_ID), token)
        out.append(token)
        done |= token[:, 0] == EOS_ID
        if bool(done.all()):
            break
    return torch.cat(out, dim=1)
