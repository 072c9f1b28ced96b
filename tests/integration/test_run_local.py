"""deploy/run-local end to end: the default plan comes up behind the proxy, logins work,
a crashed instance is reported loudly, SIGTERM stops everything and leaves no process."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import REPO
from xs_clients import login


class Lines:
    def __init__(self, pipe):
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self.t.start()

    def _pump(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in run-local output within {timeout:g}s:\n"
                                     f"{self.text()[-4000:]}")
            time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(120)
def test_run_local_default_plan(proxy_bin, base_dir):
    out_dir = base_dir / "run-local"
    # Hold 5222 (or find it taken already): run-local must then pick and print another port.
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 5222))
        blocker.listen(1)
    except OSError:
        blocker.close()
        blocker = None
    p = subprocess.Popen([str(REPO / "deploy" / "run-local"), "--proxy", str(proxy_bin),
                          "--out", str(out_dir)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    out = Lines(p.stdout)
    pids: list[int] = []
    try:
        m = out.wait_for(r"^\s+proxy\s+127\.0\.0\.1:(\d+)\s+\(pid (\d+)", 60)
        port, proxy_pid = int(m.group(1)), int(m.group(2))
        assert port != 5222
        pids.append(proxy_pid)
        inst = {name: (int(pid), int(core)) for name, core, pid in
                re.findall(r"^\s+(prosody-\d+)\s+\S+\s+core (\d+)\s+pid (\d+)", out.text(), re.M)}
        ncpu = len(os.sched_getaffinity(0))
        assert len(inst) == max(2, ncpu), out.text()
        pids += [pid for pid, _ in inst.values()]
        assert len({core for _, core in inst.values()}) == min(len(inst), ncpu), f"cores: {inst}"
        acc_file = out_dir / "accounts.txt"
        assert str(acc_file) in out.text()
        accounts = dict(line.split() for line in acc_file.read_text().splitlines()
                        if line and not line.startswith("#"))
        assert {"jvb@auth.meet.localhost", "focus@auth.meet.localhost"} <= set(accounts)

        jid = "jvb@auth.meet.localhost"
        r = login(port, jid, accounts[jid], join="JvbBrewery@internal.auth.meet.localhost", nick="jvb")
        assert r.ok and "110" in r.muc_codes, str(r)
        out.wait_for(r"^\[prosody-1\] .*Authenticated as jvb@auth\.meet\.localhost", 10)
        g = login(port, "guest.meet.localhost", join="room@conference.meet.localhost", nick="g")
        assert g.ok and "110" in g.muc_codes, str(g)
        out.wait_for(r"^\[prosody-0\] .*Authenticated as \S+@guest\.meet\.localhost", 10)
        jid = "alice@tenant1.localhost"
        assert login(port, jid, accounts[jid]).ok
        out.wait_for(r"^\[proxy\] ", 5)

        # A crashed instance is reported loudly; the rest keeps running.
        os.kill(inst["prosody-1"][0], signal.SIGKILL)
        out.wait_for(r"PROSODY INSTANCE prosody-1 .*DIED", 10)
        assert p.poll() is None, "run-local gave up after an instance crashed"

        p.send_signal(signal.SIGTERM)
        rc = p.wait(40)
        assert rc == 0, f"run-local exit code {rc}\n{out.text()[-3000:]}"
        out.t.join(5)
        assert re.search(r"proxy exited with code 0", out.text()), out.text()[-2000:]
        deadline = time.monotonic() + 5
        while any(pid_alive(x) for x in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [x for x in pids if pid_alive(x)], "processes left behind after run-local exited"
    finally:
        if blocker:
            blocker.close()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        for x in pids:
            if pid_alive(x):
                os.kill(x, signal.SIGKILL)
