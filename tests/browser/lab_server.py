"""A real JupyterLab server on 127.0.0.1 for browser tests: its own port, token, root and settings.

The server runs as a child process (``python -m jupyter lab``) with an environment of its own, so
the kernels it starts inherit it: give it the fake Gemini server's variables and every agent in
those kernels talks to the fake. Config, data, runtime and settings directories live in a
temporary directory, so the user's Jupyter setup plays no part.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat

START_TIMEOUT = 90.0  # a cold start on 2 busy cores takes ~10 s; this only bounds a broken start
# JupyterLab settings for a predictable page: every cell is rendered (no windowing, which detaches cells
# scrolled out of view) and no news / update toasts over the cells.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"},
}
PYTHON3_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """``python -m jupyter lab`` on 127.0.0.1 with a random token; `start()` returns once /api/status answers."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"  # the notebooks
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.extra_env = dict(env or {})
        self.log_path = self.workdir / "jupyter.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _environment(self) -> dict[str, str]:
        home = self.workdir / "jupyter"
        env = {**os.environ, **self.extra_env,
               "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
               "IPYTHONDIR": str(home / "ipython"), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        for plugin, values in LAB_SETTINGS.items():
            path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return env

    def start(self) -> "LabServer":
        self.root.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
                   "--JupyterNotebookApp.expose_app_in_browser=True",  # Notebook 7's pages, served by the same server
                   "--LabApp.news_url=", "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
                   "--allow-root"]  # CI runs as root
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, env=self._environment(), stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=self.root)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.api_url("/api/status"), timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"jupyter lab did not answer /api/status within {START_TIMEOUT:.0f} s:\n{self.log_text()}")

    def api_url(self, path: str) -> str:
        return f"{self.url}{path}?token={self.token}"

    def lab_url(self, notebook: str) -> str:
        """The page that opens `notebook` (a path under the root) in a fresh workspace."""
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def notebook7_url(self, notebook: str) -> str:
        """The page that opens `notebook` in Jupyter Notebook 7's UI (installed, it serves /notebooks/ here too)."""
        return f"{self.url}/notebooks/{notebook}?token={self.token}"

    def write_notebook(self, name: str, cells: list[str | nbformat.NotebookNode]) -> Path:
        """A notebook file under the root with a python3 kernelspec; str cells become code cells."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = dict(PYTHON3_KERNELSPEC)
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def read_notebook(self, name: str) -> nbformat.NotebookNode:
        return nbformat.read(self.root / name, as_version=4)

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None
        self.log.close()
