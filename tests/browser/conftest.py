"""Browser fixtures: Debian's Chromium driven by Playwright against the real `nelm serve`.

The server runs as a subprocess (``python -m nelm.cli serve --port 0``) on a temporary
SQLite file and is restarted on the same file by :meth:`Board.restart`. Playwright never
downloads a browser here: it launches /usr/bin/chromium, and the tests skip without it.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nelm.testing import stop_process

# overridable only so that the skip itself can be checked (NELM_TEST_CHROMIUM=/nonexistent)
CHROMIUM = Path(os.environ.get("NELM_TEST_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SERVING = re.compile(r"serving the tumour-board app at (http://\S+/)")


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is absent: the browser tests need Debian's Chromium "
                                   "(apt-get install chromium, or `make test`, which installs it)")
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(skip)


class Board:
    """The tumour-board server under test; ``restart()`` keeps the database."""

    def __init__(self, database: str, workdir: Path):
        self.database = database
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NELM_API_TOKEN", "NELM_DATABASE_URL")}
        env["XDG_DATA_HOME"] = str(self.workdir / "xdg")  # never the developer's own case store
        # the signing key and anchors belong to this server's store for its whole life (a
        # restart in a later test must find the checkpoints its first start wrote)
        env["NELM_ANCHOR_KEY"] = str(self.workdir / "anchor-key.pem")
        env["NELM_ANCHORS"] = str(self.workdir / "anchors.jsonl")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nelm.cli", "serve", "--port", "0", "--database", self.database],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        ready = threading.Event()

        def read(stream) -> None:
            for line in stream:
                self.output.append(line)
                m = SERVING.search(line)
                if m:
                    self.url = m.group(1)
                    ready.set()

        threading.Thread(target=read, args=(self.proc.stdout,), daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise AssertionError("nelm serve did not start:\n" + "".join(self.output)[-3000:])

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    work = tmp_path_factory.mktemp("board")
    b = Board(f"sqlite:///{work / 'cases.sqlite3'}", work)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
