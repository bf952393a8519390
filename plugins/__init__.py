"""Built-in plugins: each module registers its components through the same hooks a
third-party plugin uses (see recfeat.plugin_manager.DEFAULT_PLUGINS)."""
