"""Typed configuration: one dataclass per section (`schema`), YAML and overrides (`loading`)."""
