"""Guardrails: per-variant aggregates, the decision rule, and audited write-back."""
