"""The training engine: batching, optimiser and schedule, the loop, and batched inference."""
