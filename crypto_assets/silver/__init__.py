"""Silver: typed, validated, deduplicated trades and ticker per event day and product."""
