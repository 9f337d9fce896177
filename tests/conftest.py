import os

# Set before torch is imported anywhere: no hub access, no spin-waiting OpenMP threads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
