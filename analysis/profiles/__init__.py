"""Per-chapter parameter schemas: module ``NN_slug`` defines ``SCHEMA: dict[str, Param]``."""
