"""`stargatectl dev up`: a whole federation on one machine. The composition root for local use:
it may import the server, the store and the simulated sites; nothing imports it but the CLI."""
