"""Image services behind the job layer's provider protocol (bot/jobs/provider.py)."""
