"""`mindbench models`: the catalog, and what can be loaded on this machine right now."""

import json

import click

from . import catalog


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--prepare", is_flag=True,
              help="Convert the packaged models' GGUF files to the cache now (done once; "
                   "`make install` runs this) and report first and second load times.")
def models_command(as_json, prepare):
    """List the model catalog and say which models load here now.

    \b
    Examples:
      mindbench models
      mindbench models --json
      mindbench models --prepare
    """
    from tabulate import tabulate
    if prepare:
        _prepare()
        return
    rows = []
    for spec in catalog.CATALOG.values():
        ok, why = catalog.availability(spec)
        rows.append({"id": spec.id, "source": spec.repo or spec.package or spec.source, "params_b": spec.params_b,
                     "categories": list(spec.categories), "chat": spec.chat, "gated": spec.gated,
                     "available": ok, "why": why,
                     "default": spec.id == catalog.DEFAULT_MODEL})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(tabulate([[r["id"] + (" *" if r["default"] else ""), r["source"], r["params_b"],
                          ",".join(r["categories"]), "chat" if r["chat"] else "base",
                          "yes" if r["gated"] else "", "yes" if r["available"] else "no", r["why"]]
                         for r in rows],
                        headers=["model", "source", "params (B)", "use", "kind", "gated", "loads now", "why"]))
    click.echo("* default model. Any other Hub id (org/name) or local folder works too.")


def _prepare():
    """Convert every installed packaged model once, then time a warm load, so a user sees both."""
    from .loading import load
    for spec in catalog.CATALOG.values():
        if spec.source != "packaged" or not catalog.availability(spec)[0]:
            continue
        first = load(spec, "fp32", "cpu")
        second = load(spec, "fp32", "cpu")
        kind = "converted GGUF -> safetensors" if first.info["cold"] else "already converted"
        click.echo(f"{spec.id}: first load {first.load_s:.1f} s ({kind}), second load {second.load_s:.1f} s")
