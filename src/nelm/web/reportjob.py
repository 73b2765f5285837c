"""Long report builds in a separate process, with a deadline, stopped when the client leaves.

The full report (``?full=1``) of a large document can take minutes (WeasyPrint lays out
tens of pages), and a thread cannot be stopped: it would run on after the deadline or after
the browser went away, holding a core. Here the build runs in a child process (started by
a fork server, so the serving process with its threads and database connections is never
forked; the report code is imported once in the fork server), and the request waits for
it while checking the deadline (``NELM_REPORT_SECONDS``, default 60) and whether the
client is still connected; either ends the child at once (SIGKILL). At most
``MAX_JOBS`` builds run at once in one server process; one more is refused at once
(:class:`JobsBusy`), so requests cannot pile up processes.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

REPORT_SECONDS_ENV = "NELM_REPORT_SECONDS"
DEFAULT_REPORT_SECONDS = 60.0
POLL_SECONDS = 0.1
MAX_JOBS = 2  # report processes at once, per server (worker) process

_context: Any = None
_running = 0  # jobs now running in this process (all on its one event loop)


class JobTimeout(Exception):
    """The job ran past its deadline and was stopped."""


class ClientGone(Exception):
    """The client disconnected; the job was stopped."""


class JobFailed(Exception):
    """The job raised, or its process died; the message says how."""


class JobsBusy(Exception):
    """MAX_JOBS jobs are running already; none was started."""


def report_seconds(strict: bool = False) -> float:
    """The deadline of one report build: ``NELM_REPORT_SECONDS`` (1 to 3600), else 60.
    ``strict``: a value out of range raises ValueError naming it (``nelm serve`` checks at start-up)."""
    raw = os.environ.get(REPORT_SECONDS_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_REPORT_SECONDS
    except ValueError:
        value = -1.0
    if 1 <= value <= 3600:
        return value
    if strict:
        raise ValueError(f"{REPORT_SECONDS_ENV} must be a number from 1 to 3600 (got {raw[:40]!r})")
    return DEFAULT_REPORT_SECONDS


def build_report(fmt: str, patient: Any, assessment: dict[str, Any], full: bool,
                 decision: dict[str, Any] | None) -> bytes | str:
    """What the child runs: the report as PDF bytes or HTML text."""
    from ..report import build_html, build_pdf

    if fmt == "pdf":
        return build_pdf(patient, assessment, full=full, decision=decision)
    return build_html(patient, assessment, full=full, decision=decision)


def _mp() -> Any:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        # the fork server imports WeasyPrint, reads the evidence and compiles the templates once
        # (nelm.report.warm, as it starts: with the first report or the charts' drawing); every
        # job forked from it starts with them done
        ctx.set_forkserver_preload(["nelm.report.preload"])
        _context = ctx
    return _context


def warm_charts() -> None:
    """Draw the chart of every cohort into nelm's cache, in a report worker process of low
    priority: a printed report then only lays out its pages (the charts are the same pictures
    for every patient). Once drawn, later starts find them all in the cache in milliseconds.
    Nothing is done when the cache is off or ``NELM_WARM_CHARTS=0``."""
    from ..cache import cache_dir, has
    from ..knowledge import load

    where = cache_dir()
    if where is None or os.environ.get("NELM_WARM_CHARTS", "1") in ("0", "no", "false"):
        return
    if has("charts-drawn", load().sha256):
        return   # drawn by an earlier start of this version (the key holds nelm's source too)
    # the cache named explicitly: the fork server keeps the environment of its own start
    proc = _mp().Process(target=_draw_every_chart, args=(str(where),), daemon=True, name="nelm-charts")
    proc.start()


def _draw_every_chart(where: str) -> None:
    os.environ["NELM_CACHE_DIR"] = where
    os.environ.pop("NELM_CACHE", None)
    os.nice(10)   # after any request's work
    from ..cache import cached
    from ..knowledge import load
    from ..report import draw_every_chart

    kb = load()
    cached("charts-drawn", kb.sha256, lambda: draw_every_chart(kb))


def _child(conn: Any, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = target(*args)
    except NotImplementedError as exc:
        conn.send(("not_implemented", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which answers the request
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    else:
        conn.send(("ok", result))
    finally:
        conn.close()


async def run_bounded(target: Callable[..., Any], args: tuple[Any, ...], *, seconds: float,
                      disconnected: Callable[[], Awaitable[bool]],
                      started: Callable[[int], None] | None = None) -> Any:
    """``target(*args)`` in a child process; its result, or JobTimeout / ClientGone / JobFailed
    (NotImplementedError as itself). ``target`` and ``args`` must pickle (a module-level
    function). The deadline is checked first on every poll, so ``seconds=0`` always stops.
    JobsBusy, and nothing started, when ``MAX_JOBS`` are running."""
    global _running
    if _running >= MAX_JOBS:
        raise JobsBusy(f"{_running} report builds are running")
    _running += 1
    try:
        return await _run(target, args, seconds=seconds, disconnected=disconnected, started=started)
    finally:
        _running -= 1


async def _run(target: Callable[..., Any], args: tuple[Any, ...], *, seconds: float,
               disconnected: Callable[[], Awaitable[bool]], started: Callable[[int], None] | None) -> Any:
    ctx = _mp()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, target, args), daemon=True, name="nelm-report")
    deadline = time.monotonic() + seconds
    try:
        await anyio.to_thread.run_sync(proc.start)  # the first start also starts the fork server
        sender.close()
        if started is not None:
            started(proc.pid)
        while True:
            if time.monotonic() >= deadline:
                raise JobTimeout(f"stopped after {seconds:g} s")
            if await disconnected():
                raise ClientGone
            if receiver.poll():
                try:
                    kind, value = await anyio.to_thread.run_sync(receiver.recv)
                except EOFError:  # died without a word (killed, out of memory)
                    raise JobFailed(f"the report process ended with exit code {proc.exitcode}") from None
                if kind == "ok":
                    return value
                if kind == "not_implemented":
                    raise NotImplementedError(value)
                raise JobFailed(value)
            if not proc.is_alive() and not receiver.poll():
                raise JobFailed(f"the report process ended with exit code {proc.exitcode}")
            await anyio.sleep(POLL_SECONDS)
    finally:
        sender.close()
        if proc.pid is not None:
            if proc.is_alive():
                proc.kill()
            with anyio.CancelScope(shield=True):  # reaped even when the request's task is cancelled
                await anyio.to_thread.run_sync(proc.join, 10)
        receiver.close()
