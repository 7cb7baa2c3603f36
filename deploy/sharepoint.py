"""Creates Claqueta's SharePoint lists, columns and indexes on the configured site, or reports how they drifted.

    python -m deploy.sharepoint provision          # create what is missing (safe to run again)
    python -m deploy.sharepoint provision --check  # change nothing; exit code 1 if anything is missing

The schema is graph/schema.py, the same one the store uses. Indexes are added before a list grows:
SharePoint refuses to index a list past 5,000 items.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.column_definition import ColumnDefinition
from msgraph.generated.models.list_ import List_
from msgraph.generated.models.list_info import ListInfo
from msgraph.generated.sites.item.lists.lists_request_builder import ListsRequestBuilder

from graph.schema import LISTS, ListIds, ListSpec


@dataclass(frozen=True)
class Finding:
    """One difference between the site and the schema, and whether provisioning fixed it."""

    list_name: str
    what: str  # "lista", "columna", "índice"
    name: str
    fixed: bool

    def __str__(self) -> str:
        if self.what == "lista":
            return f"lista «{self.name}» creada" if self.fixed else f"falta la lista «{self.name}»"
        if self.fixed:
            done = "columna «{}» creada" if self.what == "columna" else "índice en «{}» creado"
            return f"{self.list_name}: " + done.format(self.name)
        gap = "falta la columna «{}»" if self.what == "columna" else "falta el índice en «{}»"
        return f"{self.list_name}: " + gap.format(self.name)


async def find_list(client: GraphServiceClient, site_id: str, display_name: str):
    quoted = display_name.replace("'", "''")
    found = await client.sites.by_site_id(site_id).lists.get(RequestConfiguration(
        query_parameters=ListsRequestBuilder.ListsRequestBuilderGetQueryParameters(filter=f"displayName eq '{quoted}'")))
    return (found.value or [None])[0] if found else None


async def provision(client: GraphServiceClient, site_id: str, *, check: bool = False,
                    specs: tuple[ListSpec, ...] = LISTS) -> list[Finding]:
    """Bring the site up to the schema (or, with `check`, only report); returns what differed."""
    findings: list[Finding] = []
    site = client.sites.by_site_id(site_id)
    for spec in specs:
        existing = await find_list(client, site_id, spec.display)
        if existing is None:
            if not check:
                await site.lists.post(List_(display_name=spec.display, description=spec.description,
                                            list_=ListInfo(template="genericList"),
                                            columns=[c.definition() for c in spec.columns]))
            findings.append(Finding(spec.display, "lista", spec.display, not check))
            continue
        lst = site.lists.by_list_id(existing.id)
        columns = {c.name: c for c in ((await lst.columns.get()).value or [])}
        for column in spec.columns:
            present = columns.get(column.name)
            if present is None:
                if not check:
                    await lst.columns.post(column.definition())
                findings.append(Finding(spec.display, "columna", column.name, not check))
            elif column.indexed and not present.indexed:
                if not check:
                    await lst.columns.by_column_definition_id(present.id).patch(ColumnDefinition(indexed=True))
                findings.append(Finding(spec.display, "índice", column.name, not check))
    return findings


async def resolve_list_ids(client: GraphServiceClient, site_id: str) -> ListIds:
    """The lists' ids, so the store's URLs survive someone renaming a list on the site."""
    ids = {}
    for spec in LISTS:
        found = await find_list(client, site_id, spec.display)
        if found is None:
            raise LookupError(f"Falta la lista «{spec.display}» en el sitio: ejecute "
                              "`python -m deploy.sharepoint provision`.")
        ids[spec.key] = found.id
    return ListIds(**ids)


async def _run(check: bool) -> int:
    from config.settings import load_settings
    from graph.client import build_graph_client, close_graph_client, validate_graph_settings

    settings = load_settings()
    validate_graph_settings(settings)
    client = build_graph_client(settings)
    try:
        findings = await provision(client, settings.sharepoint_site_id, check=check)
    finally:
        await close_graph_client(client)
    for finding in findings:
        print(finding)
    if check:
        print("Sin diferencias con el esquema." if not findings else
              f"{len(findings)} diferencia(s) con el esquema: ejecute `python -m deploy.sharepoint provision`.")
        return 1 if findings else 0
    print("Listas al día." if not findings else f"{len(findings)} cambio(s) aplicados.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.sharepoint",
                                     description="Listas de SharePoint de Claqueta")
    commands = parser.add_subparsers(dest="command", required=True)
    prov = commands.add_parser("provision", help="crea listas, columnas e índices que falten")
    prov.add_argument("--check", action="store_true", help="solo informa las diferencias (código 1 si las hay)")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args.check))


if __name__ == "__main__":
    sys.exit(main())
