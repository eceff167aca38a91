"""Where runs, stores and checkpoints live: local folders or object storage through fsspec."""
