"""mnist-demo: draw a digit, watch a network learn. Importing the package does nothing else."""

__version__ = "0.1.0"
