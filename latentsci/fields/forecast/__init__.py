"""Forecasts through the latent space: rollouts of the surrogate and their scores."""
