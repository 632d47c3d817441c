"""Self-contained HTML reports: no scripts, fonts or images from the network."""
