"""Measurements, each a small tool that returns figures with their units in their names.

- `MemoryTracker` (memory.py): a context manager over one cell; CUDA: NVML global, NVML process,
  torch max allocated and max reserved; CPU: the model footprint and the worker's peak RSS.
- `measure_speed` (speed.py): warm-up, then repeated timed prefill/decode runs -> mean/std/n.
- `measure_bandwidth` (bandwidth.py): the device's read bandwidth in GB/s, the roofline's ceiling.

Nothing here imports torch or pynvml at module import time.
"""

from mindbench.measure.bandwidth import measure_bandwidth  # noqa: F401
from mindbench.measure.memory import MB, MemoryTracker  # noqa: F401
from mindbench.measure.speed import SpeedResult, Stat, measure_speed, stat  # noqa: F401
