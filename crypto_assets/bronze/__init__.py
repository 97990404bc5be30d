"""Bronze: Kafka records landed raw per ingest day (batch and streaming), and what a write reports."""
