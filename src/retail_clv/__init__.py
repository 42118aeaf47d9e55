"""retail-clv: predict each customer's 30-day spend and number of products from raw transactions.

The package mirrors the data flow::

    ingest -> store -> features -> models -> (api, dashboard, cli)

Imports point one way: a layer never imports a layer to its right.
"""

import os as _os

__version__ = "0.1.0"

# Idle OpenMP threads (XGBoost, scikit-learn) sleep instead of spinning. With another process
# using one of two cores, spinning made a quick backtest 2.7 times slower (92.7 s against 34.3 s,
# same predictions; benchmarks/bench_contention.py), and it costs nothing on a quiet machine.
# The OpenMP runtimes read the variable once, when they load, so it is set here, before any of
# them is imported; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
