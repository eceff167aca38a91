"""A real `mlflow server` on loopback for tests, and a TCP relay in front of it whose link a test
can cut and restore (the server keeps running; only the network path to it goes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen | None, log: Path, timeout: float = 120.0
                    ) -> None:
    """Wait until the server's /health answers; fail with its log if it dies or never does."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"mlflow server exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"mlflow server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


class MlflowServer:
    """`mlflow server` with the given backend store, artifacts proxied to a local folder, bound
    to 127.0.0.1; its own process group, so stopping it stops only what it started."""

    def __init__(self, backend_uri: str, folder: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "mlflow-server.log"
        artifacts = folder / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
                   "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1"]
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=out,
                                            env=env or dict(os.environ), start_new_session=True)
        try:
            wait_for_health(self.url, self.process, self.log)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill the server's process group (the server and the workers it started): a graceful
        stop waits on idle keep-alive connections for many seconds, and nothing needs saving."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class LinkRelay:
    """Relays 127.0.0.1:port to a target port; `cut()` closes the listener and every open
    connection (clients get 'connection refused'), `restore()` listens on the same port again."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        """Listen again (same port) and relay every new connection."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener and every relayed connection."""
        with self.lock:
            if self.listener is not None:
                try:  # wakes the thread blocked in accept(); close() alone leaves it listening
                    self.listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.listener.close()
                self.listener = None
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        """Accept until the listener is closed; pipe each client to a fresh server connection."""
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way until either side closes."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
