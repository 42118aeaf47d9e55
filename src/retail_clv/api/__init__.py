"""api layer of retail-clv."""
