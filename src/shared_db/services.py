"""The four services, in the order migrations, reports and commands list them.

A module of its own so that reading settings or naming a service loads no model.
"""

SERVICES: tuple[str, ...] = ("auth", "admin", "profile", "payments")
