"""Start ``python app.py`` as a real server for the end-to-end tests (browser and ``gradio_client``).

Not a test module: the test files call :func:`start_app` from a module-scoped fixture and ``stop()`` it at the
end.  The server gets its own projects folder, media folder (holding a copy of the sample video) and Gradio
temp folder under ``root``; its output goes to ``root/server.log``, shown when it fails to start.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    """A running studio: its ``url``, process and folders."""

    url: str
    process: subprocess.Popen
    root: Path
    projects_dir: Path
    media_dir: Path
    temp_dir: Path
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate the server (then kill it if it does not exit within 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_app(root: Path, checkpoint: Path | None, tokenizer: Path | None, video: Path, *extra_args: str,
              model_short_side: int = 96, timeout: float = START_TIMEOUT_S) -> AppServer:
    """Start ``app.py`` on a free loopback port and wait until it answers HTTP 200.

    ``checkpoint`` None: no model flags, so the studio runs its bundled model. ``video`` is copied into the server's ``--media-dir`` (``root/media``). Raises ``RuntimeError`` with the
    server's log when it exits or does not answer within ``timeout`` seconds.
    """
    root = Path(root)
    projects, media, temp = root / "projects", root / "media", root / "gradio_tmp"
    for folder in (projects, media, temp):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(video, media / Path(video).name)
    port = free_port()
    env = dict(os.environ, GRADIO_TEMP_DIR=str(temp), GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    model = [] if checkpoint is None else ["--checkpoint", str(checkpoint), "--text-encoder", str(tokenizer),
                                           "--model-short-side", str(model_short_side)]
    command = [sys.executable, str(REPO / "app.py"), "--port", str(port), *model, "--projects-dir", str(projects),
               "--media-dir", str(media), *extra_args]
    log = root / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = AppServer(f"http://127.0.0.1:{port}/", process, root, projects, media, temp, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with code {process.returncode} before serving:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url, timeout=5) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"app.py did not answer on {server.url} within {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.25)


def write_bad_uploads(folder: Path) -> Path:
    """``folder`` with the bad uploads both end-to-end tests try: random bytes, an empty file and a text file
    named ``.mp4``, and a zip with a ``../`` entry beside a frame."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corrupt.mp4").write_bytes(os.urandom(20_000))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("these are not video frames\n" * 200)
    with zipfile.ZipFile(folder / "escape.zip", "w") as zf:
        zf.writestr("../escape.jpg", b"not read")
        zf.writestr("frames/00000.jpg", b"not read")
    return folder
