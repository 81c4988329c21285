"""torch.random: the default generator's seeding and state functions and fork_rng."""
import contextlib
import warnings

from .creation import (manual_seed, seed, initial_seed, get_rng_state, set_rng_state,  # noqa: F401
                       default_generator, rng_snapshot, rng_restore)

__all__ = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "fork_rng"]


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices",
             device_type="cuda"):
    """Fork the random streams: on exit the cpu generator (and every device generator) is back
    in the state it had on entry, whatever was drawn inside."""
    if not enabled:
        yield
        return
    if devices is not None and len(devices) > 1:
        warnings.warn(f"{_caller} forks the random state of every device; the {_devices_kw} "
                      "argument is accepted for compatibility")
    snap = rng_snapshot()
    cpu_state = get_rng_state()
    try:
        yield
    finally:
        rng_restore(snap)
        set_rng_state(cpu_state)
