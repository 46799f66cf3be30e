"""Profile service: user profiles."""
