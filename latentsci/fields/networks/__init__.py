"""Networks over fields: the autoencoder, the latent surrogate and how each is saved."""
