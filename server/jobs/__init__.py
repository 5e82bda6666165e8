"""Long-running jobs (Gatys, Train): a durable store, a manager with worker threads, runners per kind, the RPCs."""
