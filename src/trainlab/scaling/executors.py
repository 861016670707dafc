"""Where sweep tasks run: in this thread, on a local process pool, or on a Ray cluster.

Every executor has one method, ``map_unordered(fn, tasks)``, yielding each task's result as
soon as it finishes (so the caller appends it to disk at once), and retries a task whose
worker died (killed, out of memory) up to ``max_retries`` times: a lost worker costs only
the tasks it was running, never a finished result.

- :class:`InlineExecutor`: one task after another in the calling thread (claims, tests);
- :class:`LocalPoolExecutor`: ``concurrent.futures.ProcessPoolExecutor`` on the forkserver
  start method (fork-safe with torch), one torch thread per worker: for models this small one
  thread per process is far faster than two. When a worker dies the pool is broken; it is
  rebuilt and the unfinished tasks resubmitted. Ctrl-C is the caller's alone: workers ignore
  SIGINT from the moment they are forked (a terminal sends it to the whole process group), and
  when the caller stops (Ctrl-C, an exception, closing the iterator) the workers are terminated
  at once rather than waited for, so the results already yielded are all that is kept. A
  worker whose parent is gone (the caller killed) exits by itself;
- :class:`RayExecutor`: ``ray.remote`` tasks with ``max_retries`` (Ray resubmits a task whose
  worker process died), on a local Ray instance or an existing cluster (``address``). Ray is
  the optional extra ``trainlab[ray]``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from trainlab.errors import ArgumentError

__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "LocalPoolExecutor", "RayExecutor", "WorkerLostError",
           "make_executor"]

EXECUTORS = ("local", "ray", "inline")
T = TypeVar("T")
R = TypeVar("R")


class WorkerLostError(RuntimeError):
    """A task's worker died more often than ``max_retries`` allows."""


class Executor(Protocol):
    def map_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]: ...


class InlineExecutor:
    """Run tasks one after another here."""

    name = "inline"

    def map_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        for t in tasks:
            yield fn(t)


def _ignore_sigint_in_forkserver() -> None:
    """In the forkserver process only (this module is in its preload list): ignore SIGINT.

    The forkserver ignores SIGINT itself but gives each process it forks the handler it found
    at its start, Python's KeyboardInterrupt: a Ctrl-C reaching a worker before its initializer
    ran would print a traceback and break the pool. Ignored here first, every worker starts deaf
    to it. Anywhere else (the caller, a test importing this module) nothing changes.
    """
    import signal
    import sys

    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        frame = frame.f_back


_ignore_sigint_in_forkserver()


def _worker_init() -> None:
    """A pool worker: one torch thread, deaf to Ctrl-C (its caller decides), and gone with its parent."""
    import signal
    import threading

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    parent = os.getppid()

    def orphaned() -> None:  # the forkserver that started this worker exits with the caller
        import time

        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=orphaned, name="trainlab-orphan-watch", daemon=True).start()


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """Within the block a second Ctrl-C (or `kill`, which the CLI turns into one) is ignored (main
    thread only): cleaning up after the first must not be cut short, or workers are left that
    the interpreter's exit waits for."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_workers(pool: Any, grace: float = 2.0) -> None:
    """Shut ``pool`` down now: cancel the tasks not started, terminate the workers running the
    others (SIGTERM, SIGKILL after ``grace`` seconds) and reap them, so nothing waits for them.

    ``ProcessPoolExecutor.shutdown`` would wait for the running tasks (minutes) and has no way
    to stop them before Python 3.14 (``terminate_workers``): its ``_processes`` are used here.
    """
    import time

    with _interrupts_ignored():
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + grace
        for proc in processes:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        # The pool's manager thread closes its wake-up pipe once it sees the workers gone; the
        # interpreter's exit writes to that pipe without its lock (CPython before 3.12), so a close
        # at that moment printed "OSError: Bad file descriptor" and a traceback after the one-line
        # message. Waiting for the thread here leaves the pipe closed, and the exit skips it.
        if manager is not None and manager.is_alive():
            manager.join(grace)


class LocalPoolExecutor:
    """A process pool of ``workers`` processes (default: the CPUs this process may use)."""

    name = "local"

    def __init__(self, workers: int | None = None, max_retries: int = 2):
        self.workers = workers or len(os.sched_getaffinity(0))
        self.max_retries = max_retries

    def map_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["trainlab.scaling.executors", "trainlab.scaling.sweep", "torch"])
        pending = dict(enumerate(tasks))
        attempts = dict.fromkeys(pending, 0)
        while pending:
            pool = ProcessPoolExecutor(max_workers=min(self.workers, len(pending)), mp_context=ctx,
                                       initializer=_worker_init)
            broken = finished = False
            try:
                futures = {pool.submit(fn, t): i for i, t in pending.items()}
                for i in pending:
                    attempts[i] += 1
                not_done = set(futures)
                while not_done:
                    done, not_done = wait(not_done, return_when=FIRST_COMPLETED)
                    for f in done:
                        i = futures[f]
                        try:
                            result = f.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        del pending[i]
                        yield result
                    if broken:
                        break
                finished = True
            finally:
                if finished:  # every task returned, or the pool broke: its workers are gone or idle
                    pool.shutdown(wait=True, cancel_futures=True)
                else:  # interrupted (Ctrl-C, GeneratorExit, an error): do not wait for running tasks
                    _stop_workers(pool)
            if broken:
                over = [i for i in pending if attempts[i] > self.max_retries]
                if over:
                    raise WorkerLostError(f"a worker process died {attempts[over[0]]} times running task "
                                          f"{over[0]} (killed, or out of memory?)")


class RayExecutor:
    """Ray tasks on a local instance (``address=None``) or an existing cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, max_retries: int = 3):
        self.address, self.workers, self.max_retries = address, workers, max_retries
        self._started = False

    def _init(self) -> Any:
        ray = import_ray()
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
            if self.address is None:
                import trainlab

                src = str(Path(trainlab.__file__).resolve().parents[1])
                kw.update(num_cpus=self.workers or len(os.sched_getaffinity(0)),
                          runtime_env={"env_vars": {"PYTHONPATH": src, "OMP_NUM_THREADS": "1"}})
            try:
                ray.init(address=self.address, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ArgumentError("--address", self.address, f"a reachable Ray cluster ({e})") from None
            self._started = True
        return ray

    def shutdown(self) -> None:
        if self._started:
            import_ray().shutdown()
            self._started = False

    def map_unordered(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        ray = self._init()
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_call)
        refs = {remote.remote(fn, t): i for i, t in enumerate(tasks)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    yield ray.get(ref)
                except ray.exceptions.WorkerCrashedError as e:
                    raise WorkerLostError(f"a Ray worker died {self.max_retries + 1} times running task "
                                          f"{refs[ref]}") from e


def _ray_call(fn: Callable[[T], R], task: T) -> R:
    _worker_init()
    return fn(task)


def import_ray() -> Any:
    """``ray``, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ArgumentError("--executor", "ray",
                            "local, or install Ray first: pip install 'trainlab[ray]'") from None
    return ray


def make_executor(name: str, *, workers: int | None = None, address: str | None = None) -> Any:
    """The executor called ``name`` (one of :data:`EXECUTORS`)."""
    if name == "local":
        if address is not None:
            raise ArgumentError("--address", address, "only with --executor ray")
        return LocalPoolExecutor(workers)
    if name == "ray":
        import_ray()
        return RayExecutor(address, workers)
    if name == "inline":
        return InlineExecutor()
    raise ArgumentError("--executor", name, "one of: " + ", ".join(EXECUTORS))
