"""Redis: connections, key names, the subscriber store, the due index, and records arriving from outside."""
