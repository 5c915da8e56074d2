"""stargatectl: the command line for admins, country stewards, auditors and site operators."""
