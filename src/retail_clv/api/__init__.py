"""HTTP API of retail-clv (FastAPI): ``create_app`` builds it, ``clv serve`` runs it."""

from retail_clv.api.app import create_app

__all__ = ["create_app"]
