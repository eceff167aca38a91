"""latentsci: learn, store and exploit scientific latent spaces with Ray, Zarr and MLflow."""

from latentsci import moved

moved.install()  # old module paths keep importing (latentsci/moved.py)

from latentsci.errors import LatentsciError  # noqa: E402
from latentsci.store import LatentStore  # noqa: E402

__all__ = ["LatentStore", "LatentsciError", "__version__"]
__version__ = "0.1.0"
