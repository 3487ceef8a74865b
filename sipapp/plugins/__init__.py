"""Where sipapp looks for plugins (``twisted.plugin.getPlugins(..., sipapp.plugins)``).

Third-party packages drop a module into a ``sipapp/plugins/`` directory on
``sys.path`` (with no ``__init__.py`` of their own) that provides objects
such as ``IRouteStep`` steps; ``docs/routing.md`` shows how.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))  # type: ignore[no-untyped-call]
__all__: list[str] = []
