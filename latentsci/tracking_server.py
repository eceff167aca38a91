"""Reaching an MLflow tracking server: refuse one that does not answer before any work starts,
keep MLflow's own HTTP retries to a bound, and turn a server lost mid-run into one line.

Only server URIs (http, https, and database URIs such as postgresql://) can be unreachable; a
SQLite file in the run directory always is there.
"""

from __future__ import annotations

import os
import re
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from latentsci.errors import TrackingError

# MLflow retries each HTTP call up to 7 times with backoff 2 (minutes in all) and waits 120 s on
# a silent server; a run whose server is gone should stop within about a minute instead. Values
# the user set in the environment win.
RETRY_BOUND = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def is_http(uri: str) -> bool:
    """True for a tracking server reached over HTTP."""
    return uri.startswith(("http://", "https://"))


def redacted(uri: str) -> str:
    """The URI without a password, fit for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def bound_retries() -> None:
    """Cap MLflow's HTTP retries for this process (unless the user set them)."""
    for key, value in RETRY_BOUND.items():
        os.environ.setdefault(key, value)


def retries() -> int:
    """How many times MLflow retries one HTTP call here."""
    return int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", RETRY_BOUND[
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES"]))


def unreachable_reason(uri: str, timeout: float = 5.0) -> str | None:
    """Why the tracking server at `uri` does not answer, or None when it does (or is a file)."""
    if is_http(uri):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
                return None
        except urllib.error.HTTPError:
            return None  # something answers HTTP there (auth or a proxy): MLflow says the rest
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return getattr(reason, "strerror", None) or str(reason)
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]
    if scheme in DB_PORTS and parts.hostname:
        try:
            with socket.create_connection((parts.hostname, parts.port or DB_PORTS[scheme]),
                                          timeout=timeout):
                return None
        except OSError as exc:
            return exc.strerror or type(exc).__name__
    return None


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Refuse, in one line, a tracking server that does not answer (before any work starts)."""
    reason = unreachable_reason(uri, timeout)
    if reason is not None:
        raise TrackingError(f"MLflow tracking server {redacted(uri)} is not reachable: {reason} "
                            "(start it, or point --tracking-uri / MLFLOW_TRACKING_URI at one "
                            "that runs)")


def short_reason(exc: BaseException) -> str:
    """The gist of an MLflow or requests error: the OS error inside it when there is one."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if found:
        return found.group(0).strip()
    return (text.strip().splitlines() or [type(exc).__name__])[0][:160]


def lost_server(uri: str, what: str, exc: BaseException) -> TrackingError | None:
    """A one-line error when `exc` came from a tracking server that no longer answers, else None
    (the server is there, so `exc` is some other failure and stays as it is)."""
    if not is_http(uri) and urlsplit(uri).scheme.split("+")[0] not in DB_PORTS:
        return None
    reason = unreachable_reason(uri, timeout=3.0)
    if reason is None:
        return None
    bound = f" after {retries()} retries" if is_http(uri) else ""
    last = short_reason(exc)
    password = urlsplit(uri).password
    if password:
        last = last.replace(password, "***")
    return TrackingError(f"MLflow tracking server {redacted(uri)} stopped answering while "
                         f"{what}{bound} ({reason}; last error: {last}); the stage "
                         "stopped, its checkpoints are kept: rerun once the server is back")
