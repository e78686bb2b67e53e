"""dealreg vetting service."""
