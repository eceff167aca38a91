"""latentsci: learn, store and exploit scientific latent spaces with Ray, Zarr and MLflow."""

from latentsci.errors import LatentsciError
from latentsci.store import LatentStore

__all__ = ["LatentStore", "LatentsciError", "__version__"]
__version__ = "0.1.0"
