"""Start-up check that Claqueta's Microsoft 365 permissions are in place: one cheap read per thing the bot uses.

Each probe maps 401/403/404 to a Spanish message naming the permission (deploy/permissions.md) and the step of
deploy/README.md that grants it. What cannot be probed without a side effect is listed in NOT_PROBED:
- writing to the SharePoint lists (`Sites.Selected` with role write, not just read): shows on the first write;
- `Mail.Send`: `sendMail` has no dry run, and reading the mailbox would need Mail.Read, which Claqueta must not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
    TransitiveMembersRequestBuilder,
)
from msgraph.generated.sites.item.lists.item.items.items_request_builder import ItemsRequestBuilder

from graph.schema import ListIds

GUIDE = "deploy/README.md"
NOT_PROBED = {
    "escritura_listas": "La escritura en las listas (Sites.Selected con rol write) no se puede comprobar sin escribir: "
                        f"se verá en la primera transición. Verifique la concesión del sitio ({GUIDE}, paso 4).",
    "correo": "Mail.Send no se puede comprobar sin enviar un correo: se verá en el primer envío. Verifíquelo con "
              f"Test-ServicePrincipalAuthorization ({GUIDE}, paso 5).",
}


@dataclass(frozen=True)
class Problem:
    """Something the bot needs and cannot do; `message` says what is missing and how to fix it (Spanish)."""

    check: str  # sitio, lista:Solicitudes, biblioteca, calendario, grupo:COORDINATOR, configuración, graph
    permission: str  # the Graph permission involved, "" when it is a setting or Graph did not answer
    message: str
    status: int | None = None  # Graph's HTTP status; None: no answer (network) or a setting

    @property
    def graph_unreachable(self) -> bool:
        return self.check == "graph"


class _Stop(Exception):
    """The token itself was refused: every further probe would say the same."""


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "response_status_code", None) if isinstance(exc, APIError) else None


_TOKEN_REFUSED = ("Microsoft Graph rechazó el token de Claqueta (401): revise GRAPH_TENANT_ID, GRAPH_CLIENT_ID y el "
                  f"secreto o el certificado (¿venció el secreto?) ({GUIDE}, paso 1).")


async def check_permissions(client: GraphServiceClient, settings, *, lists: ListIds | None = None) -> list[Problem]:
    """Every problem found, in the order an administrator would fix them; [] when the bot can work."""
    problems: list[Problem] = []

    async def probe(check: str, permission: str, call: Callable[[], Awaitable[object]],
                    messages: dict[int, str]) -> object | None:
        try:
            return await call()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message; none may stop the bot
            status = _status(exc)
            if status == 401:
                problems.append(Problem(check, permission, _TOKEN_REFUSED, 401))
                raise _Stop from exc
            if status in messages:
                problems.append(Problem(check, permission, messages[status], status))
            elif status is None:
                problems.append(Problem("graph", "", f"Microsoft Graph no respondió al comprobar «{check}» "
                                                     f"({type(exc).__name__}): revise la red y GRAPH_BASE_URL."))
                raise _Stop from exc
            else:
                problems.append(Problem(check, permission, f"Microsoft Graph respondió {status} al comprobar "
                                                           f"«{check}».", status))
            return None

    try:
        await _probe_site(client, settings, lists or ListIds.names(), probe)
        await _probe_drive(client, settings, probe, problems)
        await _probe_calendar(client, settings, probe)
        await _probe_groups(client, settings, probe, problems)
    except _Stop:
        pass
    return problems


async def _probe_site(client, settings, lists: ListIds, probe) -> None:
    site = settings.sharepoint_site_id
    denied = (f"Claqueta no tiene acceso al sitio de SharePoint (403): falta Sites.Selected con consentimiento de "
              f"administrador en Entra ID ({GUIDE}, paso 2) o la concesión en el sitio con rol write "
              f"(POST /sites/{{id}}/permissions, {GUIDE}, paso 3).")
    found = await probe("sitio", "Sites.Selected", lambda: client.sites.by_site_id(site).get(), {
        403: denied,
        404: f"El sitio SHAREPOINT_SITE_ID no existe o Claqueta no lo ve (404): copie el id que devuelve "
             f"GET /sites/{{host}}:/sites/{{ruta}} ({GUIDE}, paso 3)."})
    if found is None:
        return  # every list would fail the same way
    top1 = RequestConfiguration(query_parameters=ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(top=1))
    for name in lists.as_dict().values():
        await probe(f"lista:{name}", "Sites.Selected",
                    lambda name=name: client.sites.by_site_id(site).lists.by_list_id(name).items.get(
                        request_configuration=top1), {
                        403: f"Claqueta no puede leer la lista «{name}» (403): la concesión Sites.Selected del sitio "
                             f"debe tener rol write ({GUIDE}, pasos 3 y 4).",
                        404: f"La lista «{name}» no existe en el sitio (404): créela con "
                             f"«python -m deploy.sharepoint provision» ({GUIDE}, paso 4)."})


async def _probe_drive(client, settings, probe, problems: list[Problem]) -> None:
    drive = settings.sharepoint_drive_id
    if not drive:
        problems.append(Problem("configuración", "", "SHAREPOINT_DRIVE_ID falta: sin él no se pueden subir piezas "
                                                     f"ni exportes ({GUIDE}, paso 3)."))
        return
    await probe("biblioteca", "Sites.Selected", lambda: client.drives.by_drive_id(drive).root.get(), {
        403: "Claqueta no puede abrir la biblioteca de documentos (403): la concesión Sites.Selected debe cubrir "
             f"el sitio de la biblioteca, con rol write ({GUIDE}, paso 3).",
        404: "SHAREPOINT_DRIVE_ID no es una biblioteca del sitio (404): copie el id de "
             f"GET /sites/{{id}}/drives ({GUIDE}, paso 3)."})


async def _probe_calendar(client, settings, probe) -> None:
    mailbox = settings.office_mailbox
    await probe("calendario", "Calendars.ReadWrite", lambda: client.users.by_user_id(mailbox).calendar.get(), {
        403: f"Claqueta no puede usar el calendario de {mailbox} (403): falta el rol de Exchange "
             f"«Application Calendars.ReadWrite» con un ámbito que incluya ese buzón (RBAC for Applications, "
             f"{GUIDE}, paso 5; compruébelo con Test-ServicePrincipalAuthorization).",
        404: f"OFFICE_MAILBOX ({mailbox}) no existe o no tiene buzón de Exchange Online (404) ({GUIDE}, paso 5)."})


async def _probe_groups(client, settings, probe, problems: list[Problem]) -> None:
    groups = settings.graph_role_groups
    if not groups:
        problems.append(Problem("configuración", "", "GRAPH_ROLE_GROUPS está vacío: nadie tendría un rol del "
                                                     f"procedimiento ({GUIDE}, paso 6)."))
        return
    top1 = RequestConfiguration(query_parameters=(
        TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(top=1)))
    for role, group_id in sorted(groups.items()):
        page = await probe(f"grupo:{role}", "GroupMember.Read.All",
                           lambda group_id=group_id: client.groups.by_group_id(group_id).transitive_members.get(
                               request_configuration=top1), {
                               403: "Claqueta no puede leer los miembros de los grupos de roles (403): falta "
                                    f"GroupMember.Read.All con consentimiento de administrador ({GUIDE}, paso 2).",
                               404: f"GRAPH_ROLE_GROUPS: el grupo {group_id} del rol {role} no existe (404) "
                                    f"({GUIDE}, paso 6)."})
        if page is None:
            if problems and problems[-1].status == 403:
                return  # the same missing permission for every group: say it once
            continue
        members = [m for m in (getattr(page, "value", None) or []) if (m.odata_type or "").endswith("user")]
        if members and not getattr(members[0], "display_name", None):
            problems.append(Problem(f"grupo:{role}", "User.ReadBasic.All",
                                    "Graph devuelve los miembros de los grupos solo con su id: falta User.ReadBasic.All "
                                    f"con consentimiento de administrador ({GUIDE}, paso 2). Sin él el bot no sabe "
                                    "nombres ni correos.", 200))
            return
