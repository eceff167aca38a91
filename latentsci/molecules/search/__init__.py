"""Molecule optimisers behind the latent search layer's ask/tell interface (Graph GA)."""
