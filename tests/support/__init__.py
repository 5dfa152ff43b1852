"""Test helpers, each defined once; no tests live here.

- ``ports``: a free loopback port.
- ``polling``: wait until a condition holds (sync and async).
- ``program``: run the real program as a subprocess (``run_program``) and start the real
  service on ephemeral ports (``running_program``): the one way tests start it.
- ``inprocess``: the ops layer in-process (``serve_ops``) with a real ``ControlTarget``
  stand-in (``StateTarget``) and plausible snapshots (``make_snapshot``).
- ``prometheus``: samples of a text exposition, parsed by ``prometheus_client``.
- ``harness``: the HTTP journal and the metrics-versus-/status checks of the live tests.
- ``canned``: a loopback server answering fixed bytes, for the answers the real service
  never gives (HTML error pages, broken JSON, slow replies).
"""
