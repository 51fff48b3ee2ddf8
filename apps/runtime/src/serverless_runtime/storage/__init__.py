"""How Redis is reached, and which keys exist."""
