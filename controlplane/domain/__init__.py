"""Pure domain logic: validation and records. No I/O."""
