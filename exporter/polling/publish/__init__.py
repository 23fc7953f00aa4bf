"""The published results, swapped whole: each target's snapshot and its quota snapshot."""
