"""Private utilities: paths, progress output, distributed helpers, lazy re-exports."""
