"""retail-clv: predict each customer's 30-day spend and number of products from raw transactions.

The package mirrors the data flow::

    ingest -> store -> features -> models -> (api, dashboard, cli)

Imports point one way: a layer never imports a layer to its right.
"""

__version__ = "0.1.0"
