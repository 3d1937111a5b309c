"""What operators use to see inside a running server: stats, the console, metrics."""
