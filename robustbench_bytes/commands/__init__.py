"""The click commands, one module each; cli.py registers them."""
