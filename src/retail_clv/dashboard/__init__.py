"""dashboard layer of retail-clv."""
