"""The DuckDB event warehouse: raw events, flag assignments, quarantine, loaded files."""
