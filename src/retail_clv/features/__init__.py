"""features layer of retail-clv."""
