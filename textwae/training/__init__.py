"""The one training loop, its callbacks, and train(): prepare the run, build data, fit."""
