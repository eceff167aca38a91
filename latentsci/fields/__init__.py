"""PDE fields: how solvers make them, how readers open them, how latent models forecast them.

solvers/   Navier-Stokes and Gray-Scott (spectral), and the simulate stage's block writer
data/      opening fields users bring (Zarr, The Well's HDF5), writing ours, training windows
networks/  the field autoencoder, the latent surrogate (denoiser, flow matching), checkpoints
forecast/  rollouts through the latent space and their scores
stages/    the stage kinds the fields workflow offers (simulate ... evaluate)
codec, encode, training, metrics, plots: the codec contract, encoding to a latent store, the
field models' task in the shared training loop, error measures and pictures
"""
