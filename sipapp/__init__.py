"""sipapp: a Twisted SIP application server for a carrier's signalling core.

Proxy, registrar, load balancer and least cost router, started with
``twistd -n sipapp``. The package is layered; ``docs/architecture.md`` and
``sipapp/interfaces.py`` are the places to start reading.
"""

__version__ = "0.1.0"
