"""dealreg conflict service."""
