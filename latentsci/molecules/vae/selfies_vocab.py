"""SELFIES token vocabulary: every token sequence decodes to a valid molecule."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import selfies as sf

from latentsci.molecules.chem import Reject

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)


@dataclass(frozen=True)
class SelfiesVocabulary:
    """Token <-> id map; ids 0, 1, 2 are padding, begin and end of sequence."""

    tokens: tuple[str, ...]
    max_len: int

    @classmethod
    def build(cls, smiles: list[str], max_len: int = 120, min_count: int = 1) -> SelfiesVocabulary:
        """Tokens seen at least `min_count` times in the training SMILES (SMILES SELFIES cannot
        encode are skipped; they are rejected again, with a reason, by `encode`)."""
        counts: Counter = Counter()
        for text in smiles:
            try:
                counts.update(sf.split_selfies(sf.encoder(text)))
            except sf.EncoderError:
                continue
        kept = sorted(t for t, c in counts.items() if c >= min_count)
        return cls(SPECIALS + tuple(kept), max_len)

    @cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, smiles: str) -> list[int] | Reject:
        """Token ids of a SMILES (without BOS/EOS), or a Reject saying why it cannot be modelled."""
        try:
            tokens = list(sf.split_selfies(sf.encoder(smiles)))
        except sf.EncoderError as exc:
            return Reject(f"no SELFIES for this SMILES: {str(exc).splitlines()[0]}")
        if len(tokens) + 1 > self.max_len:
            return Reject(f"too long: {len(tokens)} SELFIES tokens > {self.max_len - 1}")
        index = self.index
        unknown = [t for t in tokens if t not in index]
        if unknown:
            return Reject(f"SELFIES token {unknown[0]} outside the vocabulary")
        return [index[t] for t in tokens]

    def decode(self, ids: list[int]) -> str:
        """SMILES of a token sequence, stopping at EOS and skipping specials; always valid."""
        tokens = []
        for i in ids:
            token = self.tokens[i]
            if token == EOS:
                break
            if token not in SPECIALS:
                tokens.append(token)
        return sf.decoder("".join(tokens))

    def atom_tokens(self) -> list[bool]:
        """Which tokens place an atom (not a branch or ring instruction, not a special)."""
        return [t not in SPECIALS and "Branch" not in t and "Ring" not in t for t in self.tokens]

    def to_dict(self) -> dict:
        """Plain data for checkpoints and MLflow."""
        return {"tokens": list(self.tokens), "max_len": self.max_len}

    @classmethod
    def from_dict(cls, data: dict) -> SelfiesVocabulary:
        return cls(tuple(data["tokens"]), int(data["max_len"]))
