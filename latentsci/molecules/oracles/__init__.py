"""The molecule objectives search optimises, registered by name with the latent search layer
(`latentsci.latent.search`): single-molecule scores (QED, SA, penalized logP) here, and the PMO
tasks built from similarity, isomer, SMARTS and descriptor terms (`pmo.py`).

Objectives score canonical SMILES (the layer canonicalises first); each molecule is parsed again
in the scoring actor, so the objective needs nothing but the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rdkit import Chem

from latentsci.latent.search.objective import (Objective, register_family, register_item_kind,
                                               register_objective)
from latentsci.molecules.oracles import basic, pmo
from latentsci.molecules.oracles.basic import canonical_smiles
from latentsci.molecules.oracles.terms import (FINGERPRINTS, Isomer, Similarity, Smarts,
                                               parse_formula, parsed_smarts)


@dataclass(frozen=True)
class PerMolecule:
    """A score of one RDKit molecule, applied to a batch of SMILES (picklable for actors)."""

    function: Callable[[Chem.Mol], float]

    def __call__(self, smiles: list[str]) -> list[float]:
        """One score per SMILES; a SMILES RDKit cannot read raises (the layer logs it)."""
        out = []
        for text in smiles:
            mol = Chem.MolFromSmiles(text)
            if mol is None:
                raise ValueError(f"not a valid SMILES: {text!r}")
            out.append(self.function(mol))
        return out


def molecule_objective(name: str, function: Callable[[Chem.Mol], float],
                       description: str) -> Objective:
    """An objective scoring each molecule by `function`."""
    return Objective(name, description, PerMolecule(function), canonical_smiles)


def _register(name: str, function: Callable[[Chem.Mol], float], description: str) -> None:
    """Register a single-molecule objective."""
    register_objective(name, lambda: molecule_objective(name, function, description), description)


register_item_kind("smiles", canonical_smiles)
_register("qed", basic.qed, "QED drug-likeness (Bickerton 2012), 0-1")
_register("sa", basic.sa, "synthetic accessibility score (Ertl 2009), 1 easy - 10 hard; raw, "
          "so maximising it makes molecules harder")
_register("plogp", basic.plogp, "penalized logP, z-scored as GCPN/GraphAF/MoFlow: z(logP) + "
          "z(-SA) + z(-ring penalty)")
_register("plogp_jtvae", basic.plogp_jtvae, "penalized logP as the JT-VAE paper writes it: logP "
          "- SA - max(largest ring - 6, 0) (its released code drops the ring term)")


def _register_task(name: str, build, description: str) -> None:
    """Register a PMO task (built on first use: some read their target's descriptors)."""
    register_objective(name, lambda: molecule_objective(name, build(), description),
                       f"PMO: {description}")


for _name, (_build, _text) in pmo.TASKS.items():
    _register_task(_name, _build, _text)


def _similarity(argument: str) -> Objective:
    """similarity:FINGERPRINT:SMILES, e.g. similarity:ecfp4:CCO."""
    kind, _, target = argument.partition(":")
    if kind not in FINGERPRINTS or canonical_smiles(target) is None:
        raise ValueError(f"expected similarity:FINGERPRINT:SMILES with a fingerprint of "
                         f"{', '.join(FINGERPRINTS)} and a valid target SMILES")
    return molecule_objective(f"similarity:{argument}", Similarity(target, kind),
                              f"Tanimoto ({kind}) to {target}")


def _isomer(formula: str) -> Objective:
    """isomer:FORMULA, e.g. isomer:C7H8N2O2."""
    parse_formula(formula)
    return molecule_objective(f"isomer:{formula}", Isomer(formula), f"isomers of {formula}")


def _smarts(inverse: bool):
    """smarts:PATTERN (present) or smarts_absent:PATTERN."""
    def build(pattern: str) -> Objective:
        """The objective of one pattern, checked before any work."""
        parsed_smarts(pattern)  # one line if it does not parse
        word = "absent" if inverse else "present"
        return molecule_objective(f"smarts{'_absent' if inverse else ''}:{pattern}",
                                  Smarts(pattern, inverse), f"1 if {pattern} is {word}")
    return build


def _sklearn(path: str) -> Objective:
    """sklearn:PATH, a .skops model scoring Morgan bits (checked before any work)."""
    from latentsci.molecules.oracles.model import FingerprintModel, load_model

    load_model(path)
    return Objective(f"sklearn:{path}", f"scikit-learn model {path} on Morgan bits",
                     FingerprintModel(str(Path(path).resolve())), canonical_smiles)


register_family("sklearn", _sklearn, "a scikit-learn model on Morgan bits (r=2, 2048), saved "
                "with skops: sklearn:PATH.skops")
register_family("similarity", _similarity, "Tanimoto to a target: similarity:FINGERPRINT:SMILES "
                f"({', '.join(FINGERPRINTS)}; ecfp4 = unfolded Morgan r=2 counts)")
register_family("isomer", _isomer, "closeness to a formula: isomer:FORMULA (GuacaMol's score)")
register_family("smarts", _smarts(False), "1 if a substructure is present: smarts:PATTERN")
register_family("smarts_absent", _smarts(True), "1 if a substructure is absent: "
                "smarts_absent:PATTERN")
