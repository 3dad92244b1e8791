"""The synthetic face world: a procedural 3D face renderer with exact labels."""
