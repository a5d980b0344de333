"""The HTTP surface that is not a channel: the back-office API, health and metrics, limits, input validation."""
