"""Run the app with uvicorn in a background thread: for tests, benchmarks and the
screenshot script, which need a real server on loopback while they drive it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from annotation.queue import Queue
from annotation.web.app import create_app

# Debian's chromium, driven by Playwright (whose own browser download does not work offline).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def launch_chromium(playwright: Any) -> Any:
    """A headless Debian chromium browser from a running ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def background_server(
    queue: Queue, dataset: str, *, host: str = "127.0.0.1", port: int = 0, **app_options: Any
) -> Iterator[str]:
    """Serve ``queue`` until the block ends; yields the base URL. ``app_options`` go to
    :func:`create_app`."""
    port = port or free_port(host)
    app = create_app(queue, dataset=dataset, **app_options)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="annotate-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"annotation server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
