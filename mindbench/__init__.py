"""mindbench: measure open language models at every precision, then recommend and serve the best."""

__version__ = "0.1.0"
