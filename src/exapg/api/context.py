"""Everything a request needs, built once per app: settings, stack access, pools, sampler."""

from __future__ import annotations

from dataclasses import dataclass

from exapg.api.access import StackAccess
from exapg.api.config import ApiConfig
from exapg.api.db import Pools
from exapg.api.hashing import PasswordChecks
from exapg.api.login_gate import Gate
from exapg.api.metrics import Sampler
from exapg.api.shared import SessionCache, SharedReading
from exapg.api.timeseries import Prometheus
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
