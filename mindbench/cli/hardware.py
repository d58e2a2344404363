"""`mindbench hardware`, and the machine options it shares with `mindbench recommend`. Commands
live in mindbench/cli/ so that the library modules they drive import no click."""

from __future__ import annotations

import json

import click

from mindbench.cli import command
from mindbench.errors import MindbenchError
from mindbench.models.hardware import PROFILES, HardwareProfile, from_options, measure_cpu_bandwidth, render


def hardware_options(f):
    """--profile/--gpu-memory/--gpu/--device/--ram, shared with `mindbench recommend`."""
    f = click.option(
        "--gpu",
        metavar="NAME",
        help="Plan for a device from the table, e.g. 'RTX 4090', '2x H100', 'M2 Max 64GB' (mindbench hardware --list).",
    )(f)
    f = click.option("--ram", metavar="SIZE", help="Plan for this much RAM, e.g. 16GB.")(f)
    f = click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default=None,
        help="Plan for the CPU only, or insist on the GPU.",
    )(f)
    f = click.option("--gpu-memory", metavar="SIZE", help="Plan for a GPU with this much memory, e.g. 8GB.")(f)
    f = click.option("--profile", "profile_name", metavar="NAME", help=f"A named machine: {', '.join(PROFILES)}.")(f)
    return f


def _bandwidth_from_results(hw: HardwareProfile) -> None:
    """Memory bandwidth as `mindbench run` measured it on this machine (results/*.jsonl), if any."""
    from mindbench.decide.recommend import bandwidth_for, load_records, split_records

    try:
        records, _ = load_records(None)
    except MindbenchError:
        return
    bw = bandwidth_for(hw, split_records(hw, records)[0])
    if bw["source"].startswith("measured by mindbench run"):
        if hw.device == "cuda":
            hw.gpu.bandwidth_gb_s, hw.gpu.bandwidth_source = bw["gb_s"], bw["source"]
        else:
            hw.cpu_bandwidth_gb_s, hw.cpu_bandwidth_source = bw["gb_s"], bw["source"]


@command("hardware")
@hardware_options
@click.option("--measure", is_flag=True, help="Also measure CPU memory read bandwidth (~0.3 s).")
@click.option("--list", "list_devices", is_flag=True, help="Every device in the table: memory, bandwidth, throughput.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def hardware_command(profile_name, gpu_memory, device, ram, gpu, measure, list_devices, as_json):
    """Show this machine's GPUs, CPU, RAM and what can run here.

    \b
    Examples:
      mindbench hardware
      mindbench hardware --json
      mindbench hardware --profile t4-16gb
      mindbench hardware --gpu-memory 8GB --ram 16GB
      mindbench hardware --list
      mindbench hardware --gpu "2x RTX 3090"
    """
    if list_devices:
        from mindbench.models.devices import devices
        from mindbench.models.devices import render as render_devices

        click.echo(json.dumps([d.to_dict() for d in devices()], indent=2) if as_json else render_devices())
        return
    hw = from_options(profile_name, gpu_memory, device, ram, gpu=gpu)
    if hw.name == "detected":
        _bandwidth_from_results(hw)
    if measure and hw.cpu_bandwidth_gb_s is None:
        hw.cpu_bandwidth_gb_s, hw.cpu_bandwidth_source = measure_cpu_bandwidth()
    click.echo(json.dumps(hw.to_dict(), indent=2) if as_json else render(hw))
