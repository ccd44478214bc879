"""The parent's pool of sandbox fork servers (:mod:`pkt.evaluation.sandbox.run`; protocol in ``runner``'s docstring).

One server per concurrently running thread: a server serves one request at a time, and a thread takes an
idle live server from the pool (or starts one) for each program and gives it back afterwards. Servers
stop when their socket closes: on :func:`close_fork_servers`, at interpreter exit, or when this process
dies (the server reads EOF). A forked child of this process forgets the pool, so it neither keeps the
servers alive nor shares their sockets.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
RUNNER_ARGV = (sys.executable, "-I", "-S", "-B", str(RUNNER))  # -S: no .pth processing, 6 ms faster
_REPLY_S = 15.0  # a fork server that has not answered a request (fork, or kill + reap) by then is given up


def pidfd_exited(pidfd: int, timeout_s: float, server: socket.socket | None = None) -> bool:
    """True once the process exited, or (early) once the server's socket has news: only EOF can come."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if server is not None:
        poller.register(server, select.POLLIN)
    return bool(poller.poll(timeout_s * 1000))


class ServerLost(Exception):
    """The fork server died or stopped answering while it had a supervisor of ours: the run cannot pass."""


class ForkServer:
    """Parent end of one fork server (runner module doc); one request at a time, by one thread at a time."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # both ends close-on-exec
        try:
            with theirs:
                self.proc = subprocess.Popen(
                    (*RUNNER_ARGV, "--fork-server", str(theirs.fileno())),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(theirs.fileno(),),
                    cwd="/",
                    env={"PATH": os.defpath, "LANG": "C.UTF-8"},  # supervisors get HOME, TMPDIR from the config
                    start_new_session=True,
                )
        except BaseException:
            ours.close()
            raise
        ours.settimeout(_REPLY_S)
        self.sock = ours
        self.close = weakref.finalize(self, _stop_server, ours, self.proc)  # also at interpreter exit
        _SERVERS.add(self)

    def ask(self, request: str, fds: Sequence[int] = ()) -> tuple[str, str]:
        """One request -> the reply's first word and the rest; ServerLost when no reply comes."""
        reply = ""
        with contextlib.suppress(OSError):  # EPIPE / ECONNRESET: it died; TimeoutError: it hangs (SIGSTOP)
            if fds:
                socket.send_fds(self.sock, [request.encode()], fds)
            else:
                self.sock.send(request.encode())
            reply = self.sock.recv(4096).decode()
        if not reply:  # EOF
            raise ServerLost("sandbox fork server died or hung during the run (did the program signal it?)")
        word, _, rest = reply.partition(" ")
        return word, rest


def _stop_server(sock: socket.socket, proc: subprocess.Popen) -> None:
    sock.close()  # EOF: the server exits
    try:
        proc.wait(2.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_SERVERS: weakref.WeakSet[ForkServer] = weakref.WeakSet()
_IDLE: list[ForkServer] = []
_IDLE_LOCK = threading.Lock()


def close_fork_servers() -> None:
    """Stop the idle fork servers now (else at interpreter exit); the next run starts a new one."""
    with _IDLE_LOCK:
        idle, _IDLE[:] = list(_IDLE), []
    for server in idle:
        server.close()


def _forget_servers_in_child() -> None:
    """After os.fork(): our copies of the servers' sockets must not keep them alive, nor be shared."""
    global _IDLE_LOCK
    for server in list(_SERVERS):
        server.close.detach()
        server.sock.close()
    _IDLE.clear()
    _IDLE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_servers_in_child)


def take_server() -> ForkServer:
    """An idle live fork server from the pool, or a new one."""
    while True:
        with _IDLE_LOCK:
            server = _IDLE.pop() if _IDLE else None
        if server is None:
            return ForkServer()
        if server.proc.poll() is None:
            return server
        server.close()


def return_server(server: ForkServer, healthy: bool) -> None:
    if healthy:
        with _IDLE_LOCK:
            _IDLE.append(server)
        return
    with contextlib.suppress(OSError):
        server.proc.kill()  # a direct child, unreaped: no pid reuse
    server.close()


