"""DataLoader internals: collation, worker processes."""
