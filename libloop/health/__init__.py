"""Health: components, liveness, bounded hardware calls, the recovery ladder, systemd notify.

See :mod:`libloop.health.supervisor` for the recovery ladder and how the exit reaches the
main thread.
"""

from libloop.health.bounded import (
    STUCK_THREADS,
    BoundedBacklight,
    BoundedBus,
    BoundedPin,
    BoundedWorker,
    RetryPolicy,
    StuckThreads,
    call_with_timeout,
    is_transient,
    transfer_timeout,
)
from libloop.health.component import (
    CallbackComponent,
    Component,
    Heartbeat,
    Liveness,
    PeriodicTask,
    Probe,
)
from libloop.health.faults import Fault, FaultLog
from libloop.health.notify import Notifier, SdNotifier
from libloop.health.resources import ResourceMonitor, ResourceSample, Thresholds, ThrottleFlags, read_throttle
from libloop.health.supervisor import EXIT_RESTART, Supervisor
from libloop.health.wifi import FakeWifi, NetworkManagerWifi, WifiMonitor, WifiPoller, WifiStatus

__all__ = [
    "EXIT_RESTART",
    "STUCK_THREADS",
    "BoundedBacklight",
    "BoundedBus",
    "BoundedPin",
    "BoundedWorker",
    "CallbackComponent",
    "Component",
    "FakeWifi",
    "Fault",
    "FaultLog",
    "Heartbeat",
    "Liveness",
    "NetworkManagerWifi",
    "Notifier",
    "PeriodicTask",
    "Probe",
    "ResourceMonitor",
    "ResourceSample",
    "RetryPolicy",
    "SdNotifier",
    "StuckThreads",
    "Supervisor",
    "Thresholds",
    "ThrottleFlags",
    "WifiMonitor",
    "WifiPoller",
    "WifiStatus",
    "call_with_timeout",
    "is_transient",
    "read_throttle",
    "transfer_timeout",
]
