"""`make bench`: how fast the pipeline is, side by side with the ceilings of the machine it runs on."""
