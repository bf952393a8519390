"""Built-in plugins: each module registers its components through the same hooks a
third-party plugin uses (see recfeat.plugin.manager.DEFAULT_PLUGINS)."""
