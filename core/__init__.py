"""Core: torch and numpy only; never imports bpy, the add-on or the CLI (docs/architecture.md)."""
