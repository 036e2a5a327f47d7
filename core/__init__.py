"""Core: torch and numpy only; never imports bpy (see DESIGN.md)."""
