"""User-facing errors: one line that names the culprit, never a traceback."""


class LatentsciError(Exception):
    """A mistake in what the user gave us (config, file, address); the CLI prints it as one line."""


class ConfigError(LatentsciError):
    """A pipeline file or stage config that cannot be run as written."""


class InputDataError(LatentsciError):
    """An input file that is missing, empty or lacks what the stage needs."""


class StoreError(LatentsciError):
    """A latent store that is missing, incomplete or asked for something it does not hold."""


class ClusterError(LatentsciError):
    """A Ray cluster or job server that cannot be reached or refused the request."""
