"""dealreg intake service."""
