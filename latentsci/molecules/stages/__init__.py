"""The molecule stage kinds: any workflow may offer them (`workflows/molecules.py` tells the story).

One module per kind, each ending in its `Stage` (typed config, the output roles it reads from the
stages it needs and those it gives; `--check` matches them before work starts):
ingest.INGEST, fingerprints.FINGERPRINTS, train.TRAIN, encode.ENCODE, sample.SAMPLE,
evaluate.EVALUATE. The package imports none of them, so a verb that only needs a config's
defaults stays quick to start.
"""
