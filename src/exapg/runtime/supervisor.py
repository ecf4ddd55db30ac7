"""supervisord: the process supervisor that keeps the stack's non-PostgreSQL daemons up.

One supervisord per stack, configured and controlled from its state directory (config,
unix socket, pidfile, logs), so two stacks never touch each other's processes.
Controlled through its XML-RPC interface over the unix socket.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shlex
import signal
import socket
import sys
import xmlrpc.client
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exapg.errors import CommandError, MissingDependencyError, OperationTimeoutError
from exapg.proc import ServiceUser, find_program, pid_alive, run, wait_until
from exapg.runtime import processes
from exapg.runtime.base import Program


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("127.0.0.1")
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's unix socket with the standard library's client: what
    supervisor's own transport does, without importing supervisor's HTTP server and
    ElementTree along with it (`exapg status` asks supervisord on every call)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self.path)


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    state: str  # supervisor's statename: RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int | None
    description: str


def supervisord_binary() -> str:
    candidate = Path(sys.executable).with_name("supervisord")
    found = find_program(candidate, "supervisord")
    if not found:
        raise MissingDependencyError(
            "supervisord not found: reinstall ExaPG (pip install -e .) or apt-get install supervisor"
        )
    return found


def _environment_line(env: dict[str, str]) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'

    return ",".join(f"{key}={quoted(value)}" for key, value in sorted(env.items()))


class Supervisor:
    def __init__(self, conf_dir: Path, run_dir: Path, log_dir: Path, user: ServiceUser) -> None:
        self.conf = conf_dir / "supervisord.conf"
        self.socket = run_dir / "supervisor.sock"
        self.pidfile = run_dir / "supervisord.pid"
        self.log_dir = log_dir
        self.user = user

    # -- configuration -------------------------------------------------------
    def render(self, programs: Sequence[Program], identifier: str) -> str:
        lines = [
            "; Written by ExaPG on every 'exapg up'.",
            "[unix_http_server]",
            f"file={self.socket}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={self.log_dir / 'supervisord.log'}",
            "logfile_maxbytes=10MB",
            "logfile_backups=3",
            f"pidfile={self.pidfile}",
            f"identifier={identifier}",
            f"directory={self.conf.parent}",
            "minfds=1024",
            "umask=077",
        ]
        if self.user.switch:
            lines.append(f"user={self.user.name}")
        lines += [
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.socket}",
        ]
        for program in programs:
            lines += ["", *self._program_section(program)]
        return "\n".join(lines) + "\n"

    def _program_section(self, program: Program) -> list[str]:
        section = [
            f"[program:{program.name}]",
            f"command={shlex.join(program.command)}".replace("%", "%%"),
            "autostart=true",
            "autorestart=true",
            "startsecs=1",
            "startretries=5",
            f"stopsignal={program.stop_signal}",
            "stopwaitsecs=15",
            "stopasgroup=true",
            "killasgroup=true",
            f"stdout_logfile={self.log_dir / (program.name + '.log')}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=3",
            "redirect_stderr=true",
        ]
        if program.directory:
            section.append(f"directory={program.directory}")
        if program.environment:
            section.append(f"environment={_environment_line(program.environment)}")
        return section

    def write(self, programs: Sequence[Program], identifier: str) -> bool:
        """Write the config; True when it changed."""
        text = self.render(programs, identifier)
        old = self.conf.read_text(encoding="utf-8") if self.conf.exists() else None
        if old == text:
            return False
        self.user.write_file(self.conf, text, 0o600)
        return True

    # -- control ---------------------------------------------------------------
    def _proxy(self) -> Any:  # XML-RPC: methods and results are only known at run time
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=UnixTransport(str(self.socket)))

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self._proxy().supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False

    def start(self, timeout: float = 30) -> None:
        """Start supervisord (it daemonizes itself) and wait for its socket to answer."""
        run([supervisord_binary(), "-c", self.conf], timeout=timeout, what="supervisord")
        if not wait_until(self.running, timeout, interval=0.05):
            raise OperationTimeoutError(
                f"supervisord did not come up within {timeout:.0f}s: see {self.log_dir / 'supervisord.log'}"
            )

    def apply(self) -> list[str]:
        """Like `supervisorctl update`: load changed config, restart only changed programs."""
        proxy = self._proxy()
        added, changed, removed = proxy.supervisor.reloadConfig()[0]
        for name in [*changed, *removed]:
            self._stop_group(proxy, name)
            proxy.supervisor.removeProcessGroup(name)
        for name in [*changed, *added]:
            proxy.supervisor.addProcessGroup(name)
        return [*added, *changed]

    def restart_all(self) -> list[str]:
        """Stop and start every program (they read a changed password file only at start)."""
        proxy = self._proxy()
        proxy.supervisor.stopAllProcesses(True)
        proxy.supervisor.startAllProcesses(False)
        return [info["name"] for info in proxy.supervisor.getAllProcessInfo()]

    @staticmethod
    def _stop_group(proxy: Any, name: str) -> None:
        with contextlib.suppress(xmlrpc.client.Fault):  # already stopped
            proxy.supervisor.stopProcessGroup(name)

    def processes(self) -> dict[str, ProcessInfo]:
        if not self.running():
            return {}
        return {
            info["name"]: ProcessInfo(
                info["name"], info["statename"], info["pid"] or None, info["description"]
            )
            for info in self._proxy().supervisor.getAllProcessInfo()
        }

    def restart_process(self, name: str) -> None:
        """Stop one program (if it runs) and start it again, waiting for both."""
        proxy = self._proxy()
        with contextlib.suppress(xmlrpc.client.Fault):  # not running
            proxy.supervisor.stopProcess(name, True)
        self.start_process(name)

    def start_process(self, name: str) -> None:
        try:
            self._proxy().supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise CommandError(f"supervisor could not start {name}: {fault.faultString}") from None

    def shutdown(self, timeout: float = 30) -> bool:
        """Stop every program and supervisord itself; True when it was running."""
        if not self.running():
            return False
        pid = self._pid()
        self._proxy().supervisor.shutdown()
        if pid and not wait_until(lambda: not pid_alive(pid), timeout, interval=0.05):
            raise OperationTimeoutError(f"supervisord (pid {pid}) did not stop in {timeout:.0f}s")
        return True

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None


def reap_orphans(marker: str, timeout: float = 10) -> list[int]:
    """Stop programs left running by a supervisord that died (they carry `marker` in their env).

    Without this, a killed supervisord leaves e.g. pgBouncer holding its port and the
    next `up` could not start a fresh one.
    """
    found = processes.marked(marker)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not any(pid_alive(pid) for pid in found), timeout, interval=0.05)
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found
