"""The pure conversation engine: no IO, no clock, no Flask, no Redis."""
