"""The one reading of a device string: "cuda", "cuda:N" are a CUDA GPU, anything else ("cpu")
the host. Which device to use is decided once, by runtimes.base.pick_device; this only reads it."""


def is_cuda(device) -> bool:
    return str(device or "").startswith("cuda")


def device_kind(device) -> str:
    """ "cuda" or "cpu": how estimates, efficiency factors and tables group devices."""
    return "cuda" if is_cuda(device) else "cpu"
