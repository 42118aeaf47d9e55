"""synth layer of retail-clv."""
