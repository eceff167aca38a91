"""Simulated and user-provided fields: generators, storage, autoencoders, surrogates and metrics."""
