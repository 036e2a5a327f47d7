"""Audio front end: any common audio file → mono float32 16 kHz, the frame grid, features."""
