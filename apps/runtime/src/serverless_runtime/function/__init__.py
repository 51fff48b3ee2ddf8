"""How the user's code is found, loaded, reloaded, and what it is given."""
