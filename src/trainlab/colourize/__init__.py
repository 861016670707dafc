"""trainlab.colourize (under construction)."""
