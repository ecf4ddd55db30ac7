"""Everything a request needs, built once per app: settings, stack access, pools, sampler.

The parts are built first and the sampler from them, so nothing refers to the context
before it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exapg.api.access import StackAccess
from exapg.api.core.config import ApiConfig
from exapg.api.core.db import Pools
from exapg.api.services.backups import BackupJobs
from exapg.api.services.cluster_view import inspect
from exapg.api.services.hashing import PasswordChecks
from exapg.api.services.login_gate import Gate
from exapg.api.services.sampler import Sampler, read_coordinator, read_pooler
from exapg.api.services.shared import SessionCache, SharedReading
from exapg.api.services.timeseries import Prometheus
from exapg.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    config: ApiConfig
    access: StackAccess
    pools: Pools
    sampler: Sampler
    prometheus: Prometheus
    overview_cache: SharedReading
    sessions: SessionCache
    password_checks: PasswordChecks
    login_gate: Gate
    backup_jobs: BackupJobs


def build_context(settings: Settings, access: StackAccess, env: Mapping[str, str]) -> AppContext:
    """ConfigurationError (every invalid variable at once) before anything is started."""
    config = ApiConfig.load(
        settings, env, secret_key=access.api_secret_key(), admin_password=access.admin_password()
    )
    pools = Pools(access)
    return AppContext(
        settings=settings,
        config=config,
        access=access,
        pools=pools,
        sampler=stack_sampler(config.sample_interval, access, pools),
        prometheus=Prometheus(config.prometheus_url),
        overview_cache=SharedReading(config.overview_ttl),
        sessions=SessionCache(config.session_ttl),
        password_checks=PasswordChecks(),
        login_gate=Gate(),
        backup_jobs=BackupJobs(),
    )


def stack_sampler(interval: float, access: StackAccess, pools: Pools) -> Sampler:
    """The sampler of this stack: the coordinator's numbers, every node's health, pgBouncer."""
    return Sampler(
        interval=interval,
        overview=lambda: read_coordinator(pools),
        nodes=lambda: inspect(access, pools)[1],
        pools=lambda: read_pooler(access),
    )
