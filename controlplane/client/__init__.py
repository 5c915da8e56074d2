"""The client library: configuration, mTLS channels with failover, and typed calls.

Used by stargatectl and by the site side (operators) alike; it never imports the server.
"""
