"""models layer of retail-clv."""
