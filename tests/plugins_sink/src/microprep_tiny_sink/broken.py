"""A plugin that fails at import, to test that it is reported and not fatal."""

raise ImportError("this plugin is broken on purpose")
