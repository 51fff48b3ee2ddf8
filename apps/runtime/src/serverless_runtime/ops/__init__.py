"""How the runtime is observed and kept alive."""
