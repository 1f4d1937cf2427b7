"""``referformer download NAME``: fetch a model's files once into the Hugging Face cache.

For the tracker's weights (``facebook/sam2.1-hiera-tiny``, ``yonigozlan/EdgeTAM-hf``, ...) and the text encoder
of an official checkpoint (``roberta-base``), with a progress bar and a timeout; afterwards everything loads
from the cache without the network. The hub is ``HF_ENDPOINT`` when set (read at each call, so a mirror set
after start-up is used), else huggingface.co.

    download(name, cache_dir=None, endpoint=None, timeout=30.0) -> Path     # the snapshot folder
    cached_snapshot(name, cache_dir=None) -> Path                           # StudioError when not downloaded
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import StudioError

DEFAULT_TIMEOUT = 30.0


def download(name: str, cache_dir: str | Path | None = None, endpoint: str | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download every file of the model ``name`` into the cache (files already there are not fetched again)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    try:
        return Path(snapshot_download(repo_id=name, cache_dir=cache_dir, endpoint=endpoint, etag_timeout=timeout))
    except RepositoryNotFoundError as e:
        raise StudioError(f"{name!r} is not a model on {endpoint or 'the Hugging Face hub'}") from e
    except LocalEntryNotFoundError as e:
        raise StudioError(f"cannot download {name}: the hub ({endpoint or 'huggingface.co'}) is not reachable "
                          f"and it is not in the cache") from e
    except (OSError, ValueError) as e:
        raise StudioError(f"cannot download {name}: {' '.join(str(e).split())[:200]}") from e


def cached_snapshot(name: str, cache_dir: str | Path | None = None) -> Path:
    """The cached snapshot folder of ``name``, never touching the network; a one-line ``StudioError`` naming the
    command to run when it is not there."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=name, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError) as e:
        raise StudioError(f"{name} is not downloaded: run `referformer download {name}` while online "
                          f"(the studio works meanwhile with the grabcut tracker)") from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``download`` command's arguments (for ``referformer download``)."""
    parser.add_argument("name", help="Hugging Face id, e.g. facebook/sam2.1-hiera-tiny, yonigozlan/EdgeTAM-hf or "
                                     "roberta-base")
    parser.add_argument("--cache-dir", help="Hugging Face cache folder (default: HF_HUB_CACHE or ~/.cache/huggingface)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for the hub")


def run(args: argparse.Namespace) -> int:
    """Download ``args.name``; prints the folder it is in."""
    path = download(args.name, args.cache_dir, timeout=args.timeout)
    print(f"{args.name} is in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="referformer download", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
