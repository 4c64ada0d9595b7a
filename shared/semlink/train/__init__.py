"""Training recipes (``semlink train``): fixed seeds, resumable checkpoints, loss curves,
and a manifest recording data, steps, wall time and hardware next to the weights."""
