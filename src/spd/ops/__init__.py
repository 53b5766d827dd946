"""The lowest layer: helpers with no knowledge of SPD's models or data (atomic file writes, typed
config building, TensorFlow 1 operators and checkpoint files, reading weight files safely)."""
