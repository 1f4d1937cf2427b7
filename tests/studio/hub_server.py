"""A loopback HTTP server standing in for the Hugging Face hub: serves folders as model repositories with the
few routes ``huggingface_hub.snapshot_download`` uses (repo info, tree, resolve)."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """``with FakeHub({"tiny/sam2": folder}) as hub:`` ... ``hub.url``; ``hub.requests`` lists the paths asked."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = {name: Path(folder) for name, folder in repos.items()}
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _send(self, status: int, data: bytes, headers: dict, body: bool) -> None:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _answer(self, body: bool) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(path)
                for name, folder in hub.repos.items():
                    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
                    if path.startswith(f"/api/models/{name}/revision/"):
                        info = {"id": name, "sha": SHA, "siblings": [{"rfilename": f} for f in files]}
                        return self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
                    if path.startswith(f"/api/models/{name}/tree/"):
                        tree = [{"type": "file", "path": f, "size": (folder / f).stat().st_size,
                                 "oid": hashlib.sha1((folder / f).read_bytes()).hexdigest()} for f in files]
                        return self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, body)
                    prefix = f"/{name}/resolve/"
                    if path.startswith(prefix):
                        file = path[len(prefix):].split("/", 1)[1]
                        if file in files:
                            data = (folder / file).read_bytes()
                            etag = f'"{hashlib.sha1(data).hexdigest()}"'
                            return self._send(200, data, {"X-Repo-Commit": SHA, "ETag": etag,
                                                          "Content-Type": "application/octet-stream"}, body)
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, body)
                self._send(404, b"{}", {"X-Error-Code": "RepoNotFound", "Content-Type": "application/json"}, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
