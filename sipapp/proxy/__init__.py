"""The proxy core (RFC 3261 §16): what the server does with each request and response."""
