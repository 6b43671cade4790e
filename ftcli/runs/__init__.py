"""The run directory: what `train` writes, and rebuilding a trained model from it."""
