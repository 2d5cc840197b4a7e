"""Suite-wide settings: hypothesis profiles.

``default`` (used unless ``HYPOTHESIS_PROFILE`` names another) has no deadline,
because a loaded 2-core CI machine makes per-example timing meaningless (tests
never assert on timing), and derandomises so CI runs are reproducible. ``dev``
explores randomly, with more examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
