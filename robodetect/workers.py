"""Supervised worker processes for :func:`robodetect.batch.scan`.

``multiprocessing.Pool`` never reports a worker that was killed (the OOM killer, a decoder that
segfaults): its task simply never finishes. :class:`WorkerPool` keeps one pipe per worker and knows
which tasks each worker holds, so when a worker dies the task it was running comes back as a
:class:`WorkerDied` result naming the signal, the tasks queued behind it go to a fresh worker, and
the scan goes on. Workers ignore SIGINT (Ctrl-C is the main process's to handle) and die on SIGTERM.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

TERMINATE_SECONDS = 1.0  # how long close() waits after SIGTERM before SIGKILL


@dataclass
class WorkerDied:
    """The result of a task whose worker died while running it."""

    reason: str  # e.g. "worker died: signal 9 (SIGKILL) — out of memory?"


def death_reason(exitcode: int | None) -> str:
    """A one-line reason for a worker's exit code (negative: killed by that signal)."""
    if exitcode is None:
        return "worker died"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        hint = {
            signal.SIGKILL: " — out of memory?",
            signal.SIGSEGV: " — decoder crash?",
            signal.SIGBUS: " — decoder crash?",
        }
        return f"worker died: signal {-exitcode} ({name}){hint.get(-exitcode, '')}"
    return f"worker exited unexpectedly with status {exitcode}"


def _worker_main(conn: Connection, fn: Callable, initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked child inherits the parent's handler
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        key, task = item
        try:
            result = fn(task)
        except Exception as exc:  # fn should not raise; if it does, the task still gets an answer
            result = WorkerDied(f"worker failed: {type(exc).__name__}: {' '.join(str(exc).split())}")
        try:
            conn.send((key, result))
        except (BrokenPipeError, OSError):
            return
        except Exception as exc:  # an unpicklable result
            conn.send((key, WorkerDied(f"worker failed: result not transferable ({type(exc).__name__})")))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    tasks: deque = field(default_factory=deque)  # (key, task), the first one is running


class WorkerPool:
    """``n`` processes running ``fn(task)``; each holds at most ``depth`` tasks (one running).

    submit(key, task) when :attr:`free` > 0; poll(timeout) returns finished ``(key, result)``
    pairs, a :class:`WorkerDied` result for the task a dead worker was running.
    """

    def __init__(
        self,
        fn: Callable,
        n: int,
        *,
        initializer: Callable | None = None,
        initargs: tuple = (),
        depth: int = 2,
        start_method: str | None = None,
    ) -> None:
        if start_method is None:
            start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        self.ctx = mp.get_context(start_method)
        self.fn, self.initializer, self.initargs, self.depth = fn, initializer, initargs, depth
        self.workers = [self._spawn() for _ in range(max(1, n))]
        self.respawns = 0

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=_worker_main, args=(child, self.fn, self.initializer, self.initargs), daemon=True
        )
        proc.start()
        child.close()
        return _Worker(proc, parent)

    @property
    def free(self) -> int:
        return sum(self.depth - len(w.tasks) for w in self.workers)

    @property
    def in_flight(self) -> int:
        return sum(len(w.tasks) for w in self.workers)

    def submit(self, key: Hashable, task: Any) -> None:
        worker = min(self.workers, key=lambda w: len(w.tasks))
        if len(worker.tasks) >= self.depth:
            raise RuntimeError("WorkerPool.submit: no free slot")
        self._send(worker, key, task)

    def _send(self, worker: _Worker, key: Hashable, task: Any) -> None:
        worker.tasks.append((key, task))
        try:
            worker.conn.send((key, task))
        except (BrokenPipeError, OSError):
            pass  # the worker is dead: poll() notices and moves the task on

    def poll(self, timeout: float | None) -> list[tuple[Hashable, Any]]:
        busy = [w for w in self.workers if w.tasks]
        if not busy:
            return []
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        out: list[tuple[Hashable, Any]] = []
        for w in busy:
            dead = w.process.sentinel in ready
            if w.conn in ready or dead:
                try:
                    while w.tasks and w.conn.poll():
                        key, result = w.conn.recv()
                        w.tasks.popleft()
                        out.append((key, result))
                except (EOFError, OSError):
                    dead = True
            if dead:
                w.process.join(TERMINATE_SECONDS)
                if w.process.exitcode is None:  # pipe broken but still running: make it dead
                    w.process.kill()
                    w.process.join()
                out.extend(self._replace(w))
        return out

    def _replace(self, worker: _Worker) -> list[tuple[Hashable, Any]]:
        """A dead worker: its running task fails with the reason, the rest go to a new worker."""
        lost = []
        if worker.tasks:
            key, _ = worker.tasks.popleft()
            lost.append((key, WorkerDied(death_reason(worker.process.exitcode))))
        worker.conn.close()
        fresh = self._spawn()
        self.respawns += 1
        self.workers[self.workers.index(worker)] = fresh
        for key, task in worker.tasks:
            self._send(fresh, key, task)
        return lost

    def close(self) -> None:
        """Stop every worker now (SIGTERM, then SIGKILL after :data:`TERMINATE_SECONDS`)."""
        for w in self.workers:
            if w.process.is_alive():
                w.process.terminate()
        for w in self.workers:
            w.process.join(TERMINATE_SECONDS)
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join()
            w.conn.close()
        self.workers = []

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
