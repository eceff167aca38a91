"""Ray drivers, one module per workflow; each runs as `python -m workflows.NAME PIPELINE.toml`."""
