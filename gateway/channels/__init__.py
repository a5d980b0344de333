"""One blueprint per provider: parse and validate its form, call the service, answer in its format."""
