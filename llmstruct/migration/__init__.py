"""The migration toolkit (DESIGN.md, "Migration toolkit").

* ``fastapi_app`` -- the FastAPI service of design sheet 02 on the v1 contract, with
  an in-process bridge and the sheet's CLI bridge (needs the ``[fastapi]`` extra);
* ``engine_call`` -- ``llmstruct engine-call``, the JSON CLI the CLI bridge runs;
* ``serve_fastapi`` -- ``llmstruct serve-fastapi``: the FastAPI app under uvicorn;
* ``cli`` -- ``llmstruct migrate``: the staged migrator (``migrator``, ``gates``,
  ``state``), its controls, the report (``report``) and the proxy (``proxy_command``).

Importing this package imports neither FastAPI nor the engine: ``add_parsers`` is
called by ``llmstruct.cli`` on every start.
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_parsers"]


def add_parsers(subcommands: Any) -> None:
    """Add ``engine-call``, ``serve-fastapi`` and ``migrate`` to ``argparse`` subparsers."""
    from llmstruct.migration import cli, engine_call, serve_fastapi

    engine_call.add_parser(subcommands)
    serve_fastapi.add_parser(subcommands)
    cli.add_parser(subcommands)
