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


class RunLockError(LatentsciError):
    """A run directory another live run is using (its lock names that run)."""


class StorageError(LatentsciError):
    """Object storage (a run directory's bucket) that cannot be reached or refused a transfer."""


class TrackingError(LatentsciError):
    """An MLflow tracking server that cannot be reached, at the start or in the middle of a run."""


def one_line(text: str) -> str:
    """A message as one printable line: control characters a user's input may carry (a newline
    in a TOML key, a tab in a filter) are written as escapes instead of breaking the line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
