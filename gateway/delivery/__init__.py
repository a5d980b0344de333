"""Outbound: messages leave here, through a sender (console, Twilio), paced per route and tracked to delivery."""
