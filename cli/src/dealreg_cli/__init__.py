"""dealreg's command line for channel managers and operators: what waits, decide, history, dead letters, status."""
