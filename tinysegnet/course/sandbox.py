"""Running a submission's code where it can harm nothing: the grader's side of :mod:`worker`.

A :class:`Sandbox` copies nothing but the notebook's code into a new empty folder, starts the
worker there as its own process group with a private HOME and temporary folder, talks to it
over two pipes, and kills the whole group when done. What the worker can and cannot do is
said in :mod:`tinysegnet.course.worker`.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from . import worker

LIMIT = 256 << 20  # the largest reply the grader reads: far above any exercise's arrays


class SandboxError(Exception):
    """The submission's process died, ran out of time, or said something unreadable: every
    exercise of the submission fails with this one line."""


def available():
    """None where submissions can be sandboxed here, else the one line saying why not."""
    if worker.landlock_abi() < 1:
        return ("grading needs Linux's Landlock (kernel 5.13 or newer, enabled) to keep each "
                "submission away from the others and from this machine")
    return None


class Sandbox:
    """One submission's worker. ``Sandbox(cells, given, ...)`` starts it and runs ``cells``
    (the notebook's code, magics already turned into calls); :meth:`call` sends requests;
    :meth:`close` ends it and removes its folder."""

    def __init__(self, cells, given, timeout=600, memory_mb=4096, cpu_seconds=None):
        self.deadline_seconds = timeout
        self.folder = tempfile.mkdtemp(prefix="tinysegnet-grade-")
        home, tmp = os.path.join(self.folder, "home"), os.path.join(self.folder, "tmp")
        os.makedirs(home)
        os.makedirs(tmp)
        if os.getuid() == 0:  # the worker becomes nobody before the student's code runs
            for path in (self.folder, home, tmp):
                os.chown(path, 65534, 65534)
        self.log_path = os.path.join(self.folder, "output.log")
        self._buffered = bytearray()  # bytes read past the end of the last message
        request_read, self._requests = os.pipe()
        self._replies, reply_write = os.pipe()
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONDONTWRITEBYTECODE": "1"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-I", worker.__file__, str(reply_write), str(request_read)],
                cwd=self.folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(reply_write, request_read), start_new_session=True)
        os.close(reply_write)
        os.close(request_read)
        try:
            self._write(worker.pack_setup(cells, given, memory_mb << 20, cpu_seconds or timeout + 60))
            header, _ = self._read(timeout)
            self.cell_errors = [str(e) for e in header.get("cell_errors", [])][:50]
        except BaseException:
            self.close()
            raise

    def call(self, requests, timeout=None):
        """[worker.Reply] for ``requests`` [(function name, args)], made in the worker."""
        header, arrays = worker.call_message(requests)
        self._write(worker.frame(header, arrays))
        header, arrays = self._read(timeout or self.deadline_seconds)
        try:
            return worker.parse_replies(header, arrays, requests)
        except (KeyError, TypeError, ValueError, IndexError):
            raise SandboxError("the submission's process sent a reply the grader cannot read") from None

    def _write(self, data):
        view = memoryview(data)
        try:
            while view:
                _, ready, _ = select.select([], [self._requests], [], self.deadline_seconds)
                if not ready:
                    raise SandboxError(f"the submission did not take its input within "
                                       f"{self.deadline_seconds} s")
                view = view[os.write(self._requests, view[:65536]):]
        except BrokenPipeError:
            raise SandboxError(self._ended()) from None

    def _read(self, timeout):
        deadline = time.monotonic() + timeout
        buffered = self._buffered

        def read_exactly(n):
            while len(buffered) < n:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self._replies], [], [], max(left, 0))
                if not ready:
                    raise SandboxError(f"the submission did not finish within {timeout} s "
                                       f"(an endless loop, or code far too slow)")
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise SandboxError(self._ended())
                buffered.extend(chunk)
            data = bytes(buffered[:n])
            del buffered[:n]
            return data
        try:
            return worker.receive(read_exactly, LIMIT)
        except SandboxError:
            raise
        except Exception:  # whatever bytes the student's process wrote: not a reply we read
            raise SandboxError("the submission's process sent a reply the grader cannot read") from None

    def _ended(self):
        try:
            code = self.process.wait(5)
        except subprocess.TimeoutExpired:
            return "the submission's process stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            why = {"SIGXCPU": "its CPU time ran out", "SIGKILL": "it was killed (out of memory or time)",
                   "SIGSEGV": "it crashed"}.get(name, name)
            return f"the submission's process ended: {why}"
        return f"the submission's process ended (exit status {code}) before it was graded"

    def close(self):
        """Kill the worker's whole process group and remove its folder."""
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
