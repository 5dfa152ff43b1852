"""The connection cap fits the descriptor limit, and the listen queue stays under the cap.

``connection_cap`` changes the process's ``RLIMIT_NOFILE``, so each case runs in a
child interpreter started with the limits it needs.
"""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from hedgegrid_ops.ops.guard import FD_RESERVE, listen_backlog
from hedgegrid_ops.ops.settings import OpsSettings

_CHILD = """
import resource, sys
from hedgegrid_ops.ops.guard import connection_cap
soft, hard = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
cap = connection_cap(int(sys.argv[3]), int(sys.argv[4]))
print(cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def _in_child(soft: int, hard: int, wanted: int, listeners: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(soft), str(hard), str(wanted), str(listeners)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return int(out[0]), int(out[1])


_, HARD = resource.getrlimit(resource.RLIMIT_NOFILE)
needs_room = pytest.mark.skipif(
    HARD != resource.RLIM_INFINITY and HARD < 2 * 4096 + FD_RESERVE,
    reason="the hard descriptor limit here is below what the default caps need",
)


@needs_room
def test_the_soft_limit_is_raised_as_far_as_the_caps_need() -> None:
    cap, soft = _in_child(1024, 2 * 4096 + FD_RESERVE, 4096, 2)
    assert cap == 4096
    assert soft == 2 * 4096 + FD_RESERVE


def test_a_cap_that_cannot_fit_is_lowered_to_what_fits() -> None:
    cap, soft = _in_child(1000, 1000, 4096, 2)
    assert soft == 1000
    assert cap == (1000 - FD_RESERVE) // 2


def test_a_cap_that_fits_is_kept_and_the_limit_left_alone() -> None:
    cap, soft = _in_child(6000, 6000, 1000, 2)
    assert (cap, soft) == (1000, 6000)


def test_the_listen_queue_is_under_the_cap() -> None:
    default = OpsSettings.max_connections
    assert listen_backlog(default) == 3 * default // 4 < default
    assert listen_backlog(1) == 1
