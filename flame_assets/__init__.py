"""Committed runtime assets: the default avatar, checkpoints, their licences and cards."""
