"""PDE solvers that make training data: pseudo-spectral 2-D Navier-Stokes and Gray-Scott."""
