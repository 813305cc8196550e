"""The control database: experiments, flags, settings and the decision log."""
