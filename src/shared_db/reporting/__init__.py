"""Read-only reports built on the guide's views."""
