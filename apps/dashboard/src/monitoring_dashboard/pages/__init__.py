"""Pages of the dashboard, found and registered by Dash (`use_pages`)."""
