"""Daily bars: sources, validation and the SQL store."""
