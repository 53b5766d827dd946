"""The ``spd`` command line."""

import os

# OpenMP threads spin while they wait for work by default. On a shared or small machine the
# spinning threads steal the cores that the data workers and the other threads need: a training
# step of the CPU family cost up to 5x the CPU time on 2 busy cores. Set before torch is imported
# (OpenMP reads it once); a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
