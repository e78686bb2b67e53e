"""dealreg notify service."""
