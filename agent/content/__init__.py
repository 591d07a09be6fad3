"""Content inspection: what a file really is, the text it holds, and what that text carries."""
