"""Stage kinds that work on any latent store, whatever codec wrote it: any workflow may offer
them. interpolate.INTERPOLATE first."""
