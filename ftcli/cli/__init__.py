"""The command line: the entry point, argument rewriting, help and the checks run before a job."""
