"""ingest layer of retail-clv."""
