"""Built-in corpora (registered into corpora.BUILTIN). Filled in by the zoo work."""
