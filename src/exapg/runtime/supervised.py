"""Starting and checking the stack's supervised programs (runtime/programs) under supervisord."""

from __future__ import annotations

import time
import urllib.request

from exapg.cluster.topology import Topology
from exapg.credentials import Secrets
from exapg.errors import OperationTimeoutError
from exapg.postgres.ctl import PgIsReady, pg_isready
from exapg.proc import wait_until
from exapg.runtime import programs as supervised_programs
from exapg.runtime.base import Program
from exapg.runtime.supervisor import Supervisor, reap_orphans
from exapg.stack import LOOPBACK, Stack
from exapg.status import ServiceState

SUPERVISOR_STATES = {
    "RUNNING": ServiceState.RUNNING,
    "STARTING": ServiceState.STARTING,
    "BACKOFF": ServiceState.STARTING,
    "STOPPING": ServiceState.STOPPED,
    "STOPPED": ServiceState.STOPPED,
    "EXITED": ServiceState.STOPPED,
    "FATAL": ServiceState.FAILED,
}


def supervisor(stack: Stack) -> Supervisor:
    return Supervisor(stack.conf_dir, stack.run_dir, stack.log_dir, stack.user)


def ensure(stack: Stack, topology: Topology, secrets: Secrets, restart: bool = False) -> list[str]:
    """Write the programs' files, start the supervisor (or apply what changed), start what
    is not running, and wait until every program is healthy."""
    supervised_programs.write_files(stack, topology, secrets)
    programs = supervised_programs.for_topology(stack, topology)
    control = supervisor(stack)
    changed = control.write(programs, f"exapg-{stack.name}")
    actions = []
    if not control.running():
        reaped = reap_orphans(stack.marker)
        if reaped:
            actions.append(f"stopped {len(reaped)} process(es) left by a dead supervisor")
        from exapg.runtime.preflight import check_port  # up's step: not loaded for status

        for program in programs:
            if program.port:
                check_port(stack, program.port, program.name)
        stack.progress("starting the process supervisor")
        control.start()
        actions += [f"{p.name}: started" + (f" on port {p.port}" if p.port else "") for p in programs]
    elif restart:
        control.apply()
        actions += [f"{name}: restarted with the new password" for name in control.restart_all()]
    elif changed:
        actions += [f"{name}: (re)started with new configuration" for name in control.apply()]
    for name, info in control.processes().items():
        if SUPERVISOR_STATES.get(info.state) in (ServiceState.STOPPED, ServiceState.FAILED):
            control.start_process(name)
            actions.append(f"{name}: was {info.state.lower()}, started again")
    wait_healthy(stack, programs, control)
    return actions


def restart(stack: Stack, topology: Topology, name: str) -> list[str]:
    """Restart one supervised program and wait until it is healthy (nothing when the
    supervisor does not run)."""
    control = supervisor(stack)
    if not control.running():
        return []
    program = next(p for p in supervised_programs.for_topology(stack, topology) if p.name == name)
    control.restart_process(name)
    wait_healthy(stack, [program], control)
    return [f"{name}: restarted"]


def shutdown(stack: Stack) -> list[str]:
    """Stop the supervisor and its programs, or the programs a dead supervisor left running."""
    if supervisor(stack).shutdown():
        return ["supervised services stopped"]
    if reaped := reap_orphans(stack.marker):
        return [f"stopped {len(reaped)} process(es) left by a dead supervisor"]
    return []


def wait_healthy(stack: Stack, programs: list[Program], control: Supervisor) -> None:
    """Until every program answers its health check and the supervisor counts it running
    (up for longer than startsecs): a `status` right after `up` says running, not starting."""
    timeout = stack.settings.start_timeout
    deadline = time.monotonic() + timeout  # one budget for them all
    for program in programs:
        left = max(0.0, deadline - time.monotonic())
        if not wait_until(lambda: healthy(stack, program) and settled(control, program.name),  # noqa: B023
                          left, interval=0.05):
            raise OperationTimeoutError(
                f"{program.name} is not healthy after {timeout:.0f}s: see {stack.log_file(program.name)}"
            )


def settled(control: Supervisor, name: str) -> bool:
    info = control.processes().get(name)
    return info is not None and info.state == "RUNNING"


def healthy(stack: Stack, program: Program) -> bool:
    """An HTTP 200 from its health URL, or pg_isready on its port (pgBouncer)."""
    if program.health_url:
        return http_ok(program.health_url)
    if program.port:
        answer = pg_isready(stack.binaries, LOOPBACK, program.port, timeout=2,
                            user=stack.settings.postgres_user, dbname=stack.settings.postgres_db)
        return answer == PgIsReady.ACCEPTING
    return True


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False
