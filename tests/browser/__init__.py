"""The dashboard driven in a real headless Chromium, served by gunicorn as in production."""
