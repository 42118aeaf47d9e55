"""store layer of retail-clv."""
