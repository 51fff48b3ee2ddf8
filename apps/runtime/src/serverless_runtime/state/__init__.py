"""How `context.env` is kept, encoded and rebuilt."""
