"""Payments service: payments and their transactions."""
