"""The plugin kernel: hook specifications, the plugin manager, the component registry and
option validation. Everything else in recfeat sits on top of this package."""
