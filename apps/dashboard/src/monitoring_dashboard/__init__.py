"""Live Plotly Dash dashboard for the resource-monitor function's output in Redis."""
