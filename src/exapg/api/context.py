"""Everything a request needs, built once per app: settings, stack access, pools, sampler."""

from __future__ import annotations

from dataclasses import dataclass

from exapg.api.access import StackAccess
from exapg.api.core.config import ApiConfig
from exapg.api.core.db import Pools
from exapg.api.services.hashing import PasswordChecks
from exapg.api.services.login_gate import Gate
from exapg.api.services.metrics import Sampler
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
