"""Streaming anomaly detection over metric series, with state kept in the store."""
