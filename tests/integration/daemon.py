"""Start and stop a Buzón daemon other than smtpd (imapd, pop3d) for a
test Instance: foreground process, stderr to a file, ready when its port
greets, SIGTERM at the end with exit code 0 required."""

import signal
import socket
import subprocess
import time

import buzon


class Daemon:
    def __init__(self, inst, name, port, greeting):
        self.inst = inst
        self.name = name
        self.port = port
        self.greeting = greeting          # bytes the first line starts with
        self.stderr_path = inst.root / f"{name}.stderr"
        self.proc = None

    def start(self, timeout=None):
        exe = buzon.need_binary(self.name)
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([str(exe), "-c", str(self.inst.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err)
        deadline = time.monotonic() + (timeout or buzon.t(15))
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                self._err.close()
                raise AssertionError(
                    f"{self.name} exited with {rc} at start-up; "
                    f"stderr:\n{buzon.tail(self.stderr_path)}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    line = s.makefile("rb").readline()
                    if line.startswith(self.greeting):
                        return
                    last = line
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self._err.close()
        raise AssertionError(f"{self.name} did not greet on {self.port} (last: {last}); "
                             f"stderr:\n{buzon.tail(self.stderr_path)}")

    def stop(self):
        """SIGTERM; asserts a clean exit (code 0) within 10 s."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            assert proc.poll() is None, \
                f"{self.name} had exited with {proc.returncode} before the end; " \
                f"stderr:\n{buzon.tail(self.stderr_path)}"
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=buzon.t(10))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{self.name} ignored SIGTERM for 10 s")
            assert rc == 0, f"{self.name} exited {rc} after SIGTERM; " \
                f"stderr:\n{buzon.tail(self.stderr_path)}"
        finally:
            self._err.close()
