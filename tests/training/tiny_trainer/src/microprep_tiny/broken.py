"""A plugin module that fails to import (the CLI must report it and carry on)."""

raise ImportError("this plugin needs a library that is not installed")
