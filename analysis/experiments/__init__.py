"""Chapter experiments: one module per chapter, each function computes what one section shows."""
