"""The dynamic phase: run extension modules under a (free-threaded) interpreter, in children."""
