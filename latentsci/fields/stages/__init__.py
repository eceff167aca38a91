"""The field stage kinds: any workflow may offer them (`workflows/fields.py` tells the story).

One module per kind or pair, each ending in its `Stage`s (typed config, the output roles they
read from the stages they need and those they give; `--check` matches them before work starts):
inputs.SIMULATE and inputs.IMPORT_FIELDS, autoencoder.TRAIN_AUTOENCODER, encode.ENCODE,
surrogate.TRAIN_SURROGATE, evaluate.EVALUATE.
"""
