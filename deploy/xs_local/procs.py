"""Child processes that never outlive us, and stopping them politely then firmly.

Every child is started as `setpriv --pdeathsig KILL -- CMD`: if this Python process dies
(even by SIGKILL), the kernel kills the child. When the child must run as another user (Prosody
refuses root) the uid switch comes first and the pdeath signal is set by a second setpriv that
runs as the target user, because changing credentials clears the pdeath signal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from typing import Optional, Sequence


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise RuntimeError(f"required tool {tool!r} not found on PATH (util-linux)")
    return path


def wrap_command(cmd: Sequence[str], *, user: Optional[str] = None, cpu: Optional[int] = None) -> list[str]:
    """Prefix `cmd` so it runs as `user` (if given and we are root), pinned to `cpu`
    (if given), and dies with us."""
    setpriv = _require("setpriv")
    out: list[str] = []
    if user is not None and os.geteuid() == 0:
        out += [setpriv, "--reuid", user, "--regid", user, "--init-groups", "--"]
    out += [setpriv, "--pdeathsig", "KILL", "--"]
    if cpu is not None:
        out += [_require("taskset"), "-c", str(cpu)]
    return out + list(cmd)


def spawn(cmd: Sequence[str], *, user: Optional[str] = None, cpu: Optional[int] = None,
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=None, cwd=None) -> subprocess.Popen:
    """Start a child in its own session (so a terminal's Ctrl-C reaches only us and we stop
    children in our own order). The Popen's pid is the final program's pid: setpriv and taskset
    exec, they do not fork."""
    return subprocess.Popen(
        wrap_command(cmd, user=user, cpu=cpu),
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        env=env, cwd=cwd, start_new_session=True, close_fds=True,
    )


def stop(proc: subprocess.Popen, timeout: float = 5.0, sig: int = signal.SIGTERM) -> Optional[int]:
    """Send `sig` (SIGTERM), wait up to `timeout`, then SIGKILL. Returns the exit code
    (negative signal number if killed by a signal), None if it could not be reaped."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
    return proc.returncode


def kill(proc: subprocess.Popen, timeout: float = 5.0) -> Optional[int]:
    """SIGKILL the child and reap it."""
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    return proc.returncode
