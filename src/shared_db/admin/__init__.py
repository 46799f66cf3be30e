"""Admin service: audit trail and system configuration."""
