"""End-to-end tests: the real server on loopback, driven by SIPp and raw sockets."""
