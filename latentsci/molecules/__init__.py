"""Molecules: how they are read, represented, learnt, generated and scored.

chem/      pure RDKit functions (parsing, descriptors, scaffolds, fingerprints, splits)
ingest/    SMILES files in, the de-duplicated split table out
vae/       the graph-to-SELFIES VAE's parts, its training task, checkpoints, samplers, the fitted
           latent Gaussian and the shipped model
metrics/   the MOSES metrics (FCD included)
stages/    the stage kinds the molecules workflow offers (ingest ... evaluate)
codec, tasks, plots: the molecule codec, its Ray tasks, pictures
"""
