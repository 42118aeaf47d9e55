"""Process-wide settings the package makes on import."""

from __future__ import annotations

import os
import subprocess
import sys

SHOW = "import os, retail_clv; print(os.environ.get('OMP_WAIT_POLICY'))"


def _import_in_a_fresh_process(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_import_makes_idle_openmp_threads_sleep_unless_the_user_chose():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _import_in_a_fresh_process(env) == "PASSIVE"
    assert _import_in_a_fresh_process({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
