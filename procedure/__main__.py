"""Command line for the procedure definition: `python -m procedure flowchart --format bpmn|mermaid`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from procedure.definition import PROCEDURE
from procedure.flowchart import to_bpmn, to_mermaid

RENDERERS = {"bpmn": to_bpmn, "mermaid": to_mermaid}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m procedure", description="Herramientas sobre la definición del procedimiento."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMANDO")
    chart = commands.add_parser(
        "flowchart", help="Genera el diagrama de flujo del procedimiento a partir de su definición."
    )
    chart.add_argument("--format", choices=sorted(RENDERERS), default="mermaid",
                       help="bpmn: BPMN 2.0 XML con diagrama (bpmn.io, Camunda Modeler); "
                            "mermaid: diagrama Mermaid (por defecto).")
    chart.add_argument("--output", "-o", type=Path, metavar="ARCHIVO",
                       help="Escribe el diagrama en ARCHIVO en vez de la salida estándar.")
    args = parser.parse_args(argv)

    text = RENDERERS[args.format](PROCEDURE)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
