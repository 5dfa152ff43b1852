"""Test-wide configuration only (helpers live in ``tests/support/``).

``make test-fast`` selects the ``fast`` Hypothesis profile: the same properties with
fewer examples, for the inner edit-test loop. ``make test`` (and CI) keeps the default.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("fast", max_examples=15)
