"""Rows from files, hub datasets and bundled samples, and writing jsonl."""
