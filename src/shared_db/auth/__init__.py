"""Auth service: users, refresh tokens, devices and sessions."""
