"""Configuration: the params schema, its files and the DVC wiring (docs/design.md §5)."""
