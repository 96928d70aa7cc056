"""The hostile corpus's generators, one module per family of categories; each generator
yields (name, [(header, value)]) pairs, or whole Cases."""
