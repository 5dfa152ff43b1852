"""Child process of test_state_crash: writes state as fast as it can until it is SIGKILLed.

Each round n queues, through the real store and saver:
- a ``control`` document whose fields all derive from n (torn = fields disagree);
- a ``kill_switch`` document likewise;
- one group write that sets ``group_a`` and ``group_b`` to n and appends audit row n in a
  single transaction (torn = they disagree, or the audit rows have a gap).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hedgegrid_ops.state import ControlRecord, KillSwitchRecord, StateSaver, StateStore, TripRecord


def main(directory: str) -> None:
    store = StateStore.open(Path(directory))
    store.start()
    saver = StateSaver(store)
    start = int(store.get("group_a") or 0)
    print("ready", flush=True)
    n = start
    while True:
        n += 1
        saver.save_control(ControlRecord("paused", f"r{n}" * (n % 50 + 1), (n % 100) / 100, n))
        saver.save_kill_switch(
            KillSwitchRecord(
                float(n), float(n) * 2, TripRecord("max_drawdown", n, n, f"t{n}", n), {"x": n}, n
            )
        )

        def group(conn, n=n):  # type: ignore[no-untyped-def]
            conn.execute("INSERT OR REPLACE INTO kv VALUES ('group_a', ?, 0)", (str(n),))
            conn.execute("INSERT INTO audit (ts, entry) VALUES (?, ?)", (n, str(n)))
            conn.execute("INSERT OR REPLACE INTO kv VALUES ('group_b', ?, 0)", (str(n),))

        store.submit(group)
        if n % 50 == 0:
            store.flush()  # keep the queue short so kills land during commits


if __name__ == "__main__":
    main(sys.argv[1])
