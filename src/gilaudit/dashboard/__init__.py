"""`gilaudit dashboard`: the ecosystem-wide compatibility dashboard."""
