"""Claims of trainlab.colourize (none registered yet)."""
