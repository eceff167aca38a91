"""The 20 PMO tasks that need only RDKit (Gao et al. 2022, from GuacaMol's v2 definitions by
Brown et al. 2019), by their PMO names. Each is a function of one molecule in [0, 1].

Isomer terms follow GuacaMol's definition (total atoms counted with hydrogens), which PyTDC
adopted in 0.3.7; PyTDC 0.3.6, the version PMO's code names, counted the total from the SMILES
text instead, which scores real isomers near 0. Which one PMO's published numbers used is not
stated; bench/RESULTS.md compares task by task.
"""

from __future__ import annotations

from collections.abc import Callable

from rdkit import Chem

from latentsci.latent.search.modifiers import Clipped, Gaussian, MaxGaussian, MinGaussian
from latentsci.molecules.oracles.terms import (Descriptor, Isomer, Mean, Modified, Similarity,
                                               Smarts, descriptor_of)

CELECOXIB = "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"
TROGLITAZONE = "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O"
THIOTHIXENE = "CN(C)S(=O)(=O)c1ccc2Sc3ccccc3C(=CCCN4CCN(C)CC4)c2c1"
ALBUTEROL = "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1"
MESTRANOL = "COc1ccc2[C@H]3CC[C@@]4(C)[C@@H](CC[C@@]4(O)C#C)[C@@H]3CCc2c1"
CAMPHOR, MENTHOL = "CC1(C)C2CCC1(C)C(=O)C2", "CC(C)C1CCC(C)CC1O"
TADALAFIL = "O=C1N(CC(N2C1CC3=C(C2C4=CC5=C(OCO5)C=C4)NC6=C3C=CC=C6)=O)C"
SILDENAFIL = "CCCC1=NN(C2=C1N=C(NC2=O)C3=C(C=CC(=C3)S(=O)(=O)N4CCN(CC4)C)OCC)C"
OSIMERTINIB = "COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34"
FEXOFENADINE = "CC(C)(C(=O)O)c1ccc(cc1)C(O)CCCN2CCC(CC2)C(O)(c3ccccc3)c4ccccc4"
RANOLAZINE = "COc1ccccc1OCC(O)CN2CCN(CC(=O)Nc3c(C)cccc3C)CC2"
PERINDOPRIL = "O=C(OCC)C(NC(C(=O)N1C(C(=O)O)CC2CCCCC12)C)CCC"
AMLODIPINE = r"Clc1ccccc1C2C(=C(/N/C(=C2/C(=O)OCC)COCCN)C)\C(=O)OC"
SITAGLIPTIN = "Fc1cc(c(F)cc1F)CC(N)CC(=O)N3Cc2nnc(n2CC3)C(F)(F)F"
SITAGLIPTIN_VALSARTAN = "NC(CC(=O)N1CCn2c(nnc2C(F)(F)F)C1)Cc1cc(F)c(F)cc1F"  # same molecule
ZALEPLON = "O=C(C)N(CC)C1=CC=CC(C2=CC=NC3=C(C=NN23)C#N)=C1"
HOP_TARGET = "CCCOc1cc2ncnc(Nc3ccc4ncsc4c3)c2cc1S(=O)(=O)C(C)(C)C"
QUINAZOLINE = "[#7]-c1n[c;h1]nc2[c;h1]c(-[#8])[c;h0][c;h1]c12"


def _rediscovery(target: str) -> Callable[[Chem.Mol], float]:
    """Tanimoto (ECFP4) to the target."""
    return Similarity(target, "ecfp4")


def _tasks() -> dict[str, tuple[Callable[[], Callable[[Chem.Mol], float]], str]]:
    """Each task's builder and one-line description."""
    sim = Similarity
    return {
        "celecoxib_rediscovery": (lambda: _rediscovery(CELECOXIB),
                                  "Tanimoto (ECFP4 counts) to celecoxib"),
        "troglitazone_rediscovery": (lambda: _rediscovery(TROGLITAZONE),
                                     "Tanimoto (ECFP4 counts) to troglitazone"),
        "thiothixene_rediscovery": (lambda: _rediscovery(THIOTHIXENE),
                                    "Tanimoto (ECFP4 counts) to thiothixene"),
        "albuterol_similarity": (lambda: Modified(sim(ALBUTEROL, "fcfp4"), Clipped(0.75)),
                                 "FCFP4 similarity to albuterol, full marks from 0.75"),
        "mestranol_similarity": (lambda: Modified(sim(MESTRANOL, "ap"), Clipped(0.75)),
                                 "atom-pair similarity to mestranol, full marks from 0.75"),
        "isomers_c7h8n2o2": (lambda: Isomer("C7H8N2O2"), "isomers of C7H8N2O2"),
        "isomers_c9h10n2o2pf2cl": (lambda: Isomer("C9H10N2O2PF2Cl"),
                                   "isomers of C9H10N2O2PF2Cl"),
        "median1": (lambda: Mean([sim(CAMPHOR), sim(MENTHOL)]),
                    "geometric mean of ECFP4 similarity to camphor and to menthol"),
        "median2": (lambda: Mean([sim(TADALAFIL, "ecfp6"), sim(SILDENAFIL, "ecfp6")]),
                    "geometric mean of ECFP6 similarity to tadalafil and to sildenafil"),
        "osimertinib_mpo": (lambda: Mean([
            Modified(sim(OSIMERTINIB, "fcfp4"), Clipped(0.8)),
            Modified(sim(OSIMERTINIB, "ecfp6"), MinGaussian(0.85, 0.1)),
            Modified(Descriptor("tpsa"), MaxGaussian(100, 10)),
            Modified(Descriptor("logp"), MinGaussian(1, 1))]),
            "like osimertinib (FCFP4, not too close in ECFP6), TPSA >= 100, logP <= 1"),
        "fexofenadine_mpo": (lambda: Mean([
            Modified(sim(FEXOFENADINE, "ap"), Clipped(0.8)),
            Modified(Descriptor("tpsa"), MaxGaussian(90, 10)),
            Modified(Descriptor("logp"), MinGaussian(4, 1))]),
            "like fexofenadine (atom pairs), TPSA >= 90, logP <= 4"),
        "ranolazine_mpo": (lambda: Mean([
            Modified(sim(RANOLAZINE, "ap"), Clipped(0.7)),
            Modified(Descriptor("logp"), MaxGaussian(7, 1)),
            Modified(Descriptor("fluorine"), Gaussian(1, 1.0)),
            Modified(Descriptor("tpsa"), MaxGaussian(95, 20))]),
            "like ranolazine (atom pairs), logP >= 7, one fluorine, TPSA >= 95"),
        "perindopril_mpo": (lambda: Mean([
            sim(PERINDOPRIL), Modified(Descriptor("aromatic_rings"), Gaussian(2, 0.5))]),
            "like perindopril (ECFP4) with two aromatic rings"),
        "amlodipine_mpo": (lambda: Mean([
            sim(AMLODIPINE), Modified(Descriptor("rings"), Gaussian(3, 0.5))]),
            "like amlodipine (ECFP4) with three rings"),
        "sitagliptin_mpo": (lambda: Mean([
            Modified(sim(SITAGLIPTIN), Gaussian(0, 0.1)),
            Modified(Descriptor("logp"), Gaussian(descriptor_of(SITAGLIPTIN, "logp"), 0.2)),
            Modified(Descriptor("tpsa"), Gaussian(descriptor_of(SITAGLIPTIN, "tpsa"), 5)),
            Isomer("C16H15F6N5O")]),
            "unlike sitagliptin (ECFP4) with its logP, TPSA and formula"),
        "zaleplon_mpo": (lambda: Mean([sim(ZALEPLON), Isomer("C19H17N3O2")]),
                         "like zaleplon (ECFP4) with the formula C19H17N3O2"),
        "valsartan_smarts": (lambda: Mean([
            Smarts("CN(C=O)Cc1ccc(c2ccccc2)cc1"),
            Modified(Descriptor("logp"), Gaussian(descriptor_of(SITAGLIPTIN_VALSARTAN, "logp"),
                                                  0.2)),
            Modified(Descriptor("tpsa"), Gaussian(descriptor_of(SITAGLIPTIN_VALSARTAN, "tpsa"),
                                                  5)),
            Modified(Descriptor("bertz"), Gaussian(descriptor_of(SITAGLIPTIN_VALSARTAN,
                                                                 "bertz"), 30))]),
            "valsartan's substructure with sitagliptin's logP, TPSA and Bertz complexity"),
        "deco_hop": (lambda: Mean([
            Modified(sim(HOP_TARGET, "phco"), Clipped(0.85)),
            Smarts("CS([#6])(=O)=O", inverse=True),
            Smarts("[#7]-c1ccc2ncsc2c1", inverse=True),
            Smarts(QUINAZOLINE)], kind="arithmetic"),
            "decoration hop: keep the quinazoline scaffold, change its decorations"),
        "scaffold_hop": (lambda: Mean([
            Modified(sim(HOP_TARGET, "phco"), Clipped(0.75)),
            Smarts("[#6]-[#6]-[#6]-[#8]-[#6]~[#6]~[#6]~[#6]~[#6]-[#7]-c1ccc2ncsc2c1"),
            Smarts(QUINAZOLINE, inverse=True)], kind="arithmetic"),
            "scaffold hop: keep the decorations, replace the quinazoline scaffold"),
    }


TASKS = _tasks()
