"""Project-wide test settings."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Shared 2-core CI machines make per-example deadlines flaky; examples stay bounded instead.
settings.register_profile(
    "project", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("project")
