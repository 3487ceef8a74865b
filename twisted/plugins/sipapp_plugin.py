"""The ``twistd sipapp`` plugin: a lazy pointer to :mod:`sipapp.tap`.

Twisted imports every file in ``twisted/plugins`` while it looks for plugins,
so this one holds nothing but the ``ServiceMaker``; ``sipapp.tap`` is imported
only when ``sipapp`` is run.
"""

from twisted.application.service import ServiceMaker

sipapp = ServiceMaker(
    "sipapp",
    "sipapp.tap",
    "A SIP proxy, registrar, load balancer and least cost router.",
    "sipapp",
)
