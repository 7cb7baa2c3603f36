"""The real msgraph-sdk client, as build_graph_client makes it, against FakeGraph over loopback HTTP."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import httpx
import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.column_definition import ColumnDefinition
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.drive_item_uploadable_properties import DriveItemUploadableProperties
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.list_ import List_
from msgraph.generated.models.list_info import ListInfo
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.models.message import Message
from msgraph.generated.models.online_meeting_provider_type import OnlineMeetingProviderType
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.text_column import TextColumn
from msgraph.generated.models.upload_session import UploadSession
from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (
    CreateUploadSessionPostRequestBody,
)
from msgraph.generated.sites.item.lists.item.items.items_request_builder import ItemsRequestBuilder
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import GetSchedulePostRequestBody
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph_core.requests.batch_request_content import BatchRequestContent

from config.settings import Settings, SettingsError
from graph.auth import GraphAuthError, MsalTokenProvider, StaticTokenProvider
from graph.client import build_graph_client, close_graph_client, send_batch, validate_graph_settings
from tests.graph_fixtures import fake_graph, graph_calls, graph_client, graph_settings  # noqa: F401  (fixtures)
from tests.graph_server import CHUNK_UNIT, FakeGraph

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # msgraph-sdk warns on import

MAILBOX = "audiovisual@proinversion.gob.pe"
PREFER_NON_INDEXED = "HonorNonIndexedQueriesWarningMayFailRandomly"


async def make_requests_list(client, graph: FakeGraph, *, status_indexed: bool = True):
    body = List_(display_name="Solicitudes", list_=ListInfo(template="genericList"), columns=[
        ColumnDefinition(name="Estado", text=TextColumn(), indexed=status_indexed),
        ColumnDefinition(name="Area", text=TextColumn()),
        ColumnDefinition(name="Historial", text=TextColumn(allow_multiple_lines=True)),
    ])
    created = await client.sites.by_site_id(graph.site_id).lists.post(body)
    return client.sites.by_site_id(graph.site_id).lists.by_list_id(created.id)


def items_query(**params) -> RequestConfiguration:
    config = RequestConfiguration(query_parameters=ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(**params))
    return config


# ── SharePoint list items ────────────────────────────────────────────────────────────────
async def test_a_created_item_reads_back_with_its_fields(graph_client, fake_graph):
    requests = await make_requests_list(graph_client, fake_graph)
    created = await requests.items.post(ListItem(fields=FieldValueSet(additional_data={
        "Title": "Video institucional 2025", "Estado": "PRE-01", "Area": "Comunicaciones"})))

    read = await requests.items.by_list_item_id(created.id).get(
        request_configuration=RequestConfiguration(
            query_parameters=ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(expand=["fields"])))

    assert read.fields.additional_data["Title"] == "Video institucional 2025"
    assert read.fields.additional_data["Estado"] == "PRE-01"
    assert read.e_tag == created.e_tag


async def test_filtering_on_an_indexed_column_pages_through_next_links(graph_client, fake_graph, graph_calls):
    requests = await make_requests_list(graph_client, fake_graph)
    for n in range(25):  # past the threshold of 10: a "large list"
        await requests.items.post(ListItem(fields=FieldValueSet(additional_data={
            "Title": f"Pieza {n}", "Estado": "PRO-03" if n % 2 else "PRE-01"})))
    graph_calls.reset()

    page = await requests.items.get(request_configuration=items_query(
        expand=["fields"], filter="fields/Estado eq 'PRO-03'", top=5))
    titles = [i.fields.additional_data["Title"] for i in page.value]
    while page.odata_next_link:
        page = await requests.items.with_url(page.odata_next_link).get()
        titles += [i.fields.additional_data["Title"] for i in page.value]

    assert titles == [f"Pieza {n}" for n in range(25) if n % 2]
    assert graph_calls.total == 3  # 12 matches, 5 per page


async def test_a_stale_etag_is_refused_with_412_and_a_fresh_one_applies(graph_client, fake_graph):
    requests = await make_requests_list(graph_client, fake_graph)
    created = await requests.items.post(ListItem(fields=FieldValueSet(additional_data={"Estado": "PRE-01"})))
    item = requests.items.by_list_item_id(created.id)

    def if_match(etag: str) -> RequestConfiguration:
        config = RequestConfiguration()
        config.headers.add("If-Match", etag)
        return config

    await item.fields.patch(FieldValueSet(additional_data={"Estado": "PRE-02"}), request_configuration=if_match(created.e_tag))
    with pytest.raises(APIError) as refused:
        await item.fields.patch(FieldValueSet(additional_data={"Estado": "PRE-09"}),
                                request_configuration=if_match(created.e_tag))

    assert refused.value.response_status_code == 412
    current = await item.get()
    assert current.e_tag != created.e_tag
    await item.fields.patch(FieldValueSet(additional_data={"Estado": "PRE-03"}), request_configuration=if_match(current.e_tag))
    assert fake_graph.get_list("Solicitudes").items[int(created.id)].fields["Estado"] == "PRE-03"


async def test_filters_on_a_column_that_is_not_indexed_are_refused_and_fail_on_a_large_list(graph_client, fake_graph):
    requests = await make_requests_list(graph_client, fake_graph)
    for n in range(3):
        await requests.items.post(ListItem(fields=FieldValueSet(additional_data={"Area": "Comunicaciones"})))
    by_area = dict(expand=["fields"], filter="fields/Area eq 'Comunicaciones'")

    with pytest.raises(APIError) as refused:
        await requests.items.get(request_configuration=items_query(**by_area))
    assert refused.value.response_status_code == 400
    assert "not indexed" in refused.value.error.message

    accepting_risk = items_query(**by_area)
    accepting_risk.headers.add("Prefer", PREFER_NON_INDEXED)
    assert len((await requests.items.get(request_configuration=accepting_risk)).value) == 3

    for n in range(10):  # now past the list view threshold
        await requests.items.post(ListItem(fields=FieldValueSet(additional_data={"Area": "Finanzas"})))
    with pytest.raises(APIError) as too_large:
        await requests.items.get(request_configuration=accepting_risk)
    assert "list view threshold" in too_large.value.error.message


async def test_a_list_is_found_by_name_and_a_column_indexed_later_becomes_filterable(graph_client, fake_graph):
    await make_requests_list(graph_client, fake_graph)
    from msgraph.generated.sites.item.lists.lists_request_builder import ListsRequestBuilder

    site = graph_client.sites.by_site_id(fake_graph.site_id)
    found = await site.lists.get(RequestConfiguration(query_parameters=ListsRequestBuilder.ListsRequestBuilderGetQueryParameters(
        filter="displayName eq 'Solicitudes'")))
    [requests_list] = found.value
    lst = site.lists.by_list_id(requests_list.id)
    columns = {c.name: c for c in (await lst.columns.get()).value}
    assert columns["Estado"].indexed and not columns["Area"].indexed

    await lst.columns.by_column_definition_id(columns["Area"].id).patch(ColumnDefinition(indexed=True))
    page = await lst.items.get(request_configuration=items_query(filter="fields/Area eq 'Finanzas'"))

    assert page.value == []


async def test_multi_line_text_over_63999_characters_is_refused(graph_client, fake_graph):
    requests = await make_requests_list(graph_client, fake_graph)
    await requests.items.post(ListItem(fields=FieldValueSet(additional_data={"Historial": "x" * 63_999})))
    with pytest.raises(APIError) as refused:
        await requests.items.post(ListItem(fields=FieldValueSet(additional_data={"Historial": "x" * 64_000})))
    assert refused.value.response_status_code == 400


# ── throttling and faults ────────────────────────────────────────────────────────────────
async def test_a_429_is_retried_after_the_retry_after_delay(graph_client, fake_graph, graph_calls):
    requests = await make_requests_list(graph_client, fake_graph)
    fake_graph.throttle(1, retry_after=1, routes={"items.create"})

    created = await requests.items.post(ListItem(fields=FieldValueSet(additional_data={"Estado": "PRE-01"})))

    attempts = fake_graph.calls_to("items.create")
    assert [c.status for c in attempts] == [429, 201]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert attempts[1].headers.get("retry-attempt") == "1"
    assert created.id and len(fake_graph.get_list("Solicitudes").items) == 1


async def test_a_post_answered_503_after_the_work_is_sent_again_by_the_sdk(graph_client, fake_graph):
    """Why effects need keys: the SDK re-sends a POST on 503, and Graph had already done it."""
    requests = await make_requests_list(graph_client, fake_graph)
    fake_graph.fail_after_work(1, routes={"items.create"})

    await requests.items.post(ListItem(fields=FieldValueSet(additional_data={"Estado": "PRE-01"})))

    assert [c.status for c in fake_graph.calls_to("items.create")] == [503, 201]
    assert len(fake_graph.get_list("Solicitudes").items) == 2  # the duplicate the dispatcher must expect


async def test_an_event_sent_twice_with_the_same_transaction_id_is_created_once(graph_client, fake_graph):
    event = Event(subject="Reunión de inicio: Video institucional", transaction_id="claqueta-effect-42",
                  start=DateTimeTimeZone(date_time="2025-03-10T10:00:00", time_zone="America/Lima"),
                  end=DateTimeTimeZone(date_time="2025-03-10T11:00:00", time_zone="America/Lima"),
                  is_online_meeting=True, online_meeting_provider=OnlineMeetingProviderType.TeamsForBusiness)
    fake_graph.fail_after_work(1, routes={"events.create"})  # the SDK retries the POST…

    first = await graph_client.users.by_user_id(MAILBOX).events.post(event)
    again = await graph_client.users.by_user_id(MAILBOX).events.post(event)  # …and so may the dispatcher

    assert first.id == again.id
    assert len(fake_graph.events[MAILBOX]) == 1
    assert first.online_meeting.join_url.startswith("https://teams.microsoft.com/")


async def test_get_schedule_shows_the_recorded_meeting_as_busy(graph_client, fake_graph):
    await graph_client.users.by_user_id(MAILBOX).events.post(Event(
        subject="Revisión de guion", transaction_id="t-1",
        start=DateTimeTimeZone(date_time="2025-03-10T10:00:00", time_zone="America/Lima"),
        end=DateTimeTimeZone(date_time="2025-03-10T11:00:00", time_zone="America/Lima")))

    schedule = await graph_client.users.by_user_id(MAILBOX).calendar.get_schedule.post(GetSchedulePostRequestBody(
        schedules=[MAILBOX], availability_view_interval=30,
        start_time=DateTimeTimeZone(date_time="2025-03-10T09:00:00", time_zone="America/Lima"),
        end_time=DateTimeTimeZone(date_time="2025-03-10T12:00:00", time_zone="America/Lima")))

    info = schedule.value[0]
    assert info.availability_view == "002200"
    assert info.schedule_items[0].subject == "Revisión de guion"


# ── mail ────────────────────────────────────────────────────────────────────────────────
async def test_send_mail_is_accepted_and_recorded(graph_client, fake_graph, graph_calls):
    message = Message(subject="Solicitud recibida", body=ItemBody(content_type=BodyType.Html, content="<p>Hola</p>"),
                      to_recipients=[Recipient(email_address=EmailAddress(address="jefa@proinversion.gob.pe"))])

    await graph_client.users.by_user_id(MAILBOX).send_mail.post(
        SendMailPostRequestBody(message=message, save_to_sent_items=True))

    assert graph_calls.log[-1][2] == 202
    sent = fake_graph.sent_mail[0]
    assert sent["mailbox"] == MAILBOX
    assert sent["message"]["subject"] == "Solicitud recibida"
    assert sent["message"]["toRecipients"][0]["emailAddress"]["address"] == "jefa@proinversion.gob.pe"


# ── $batch ──────────────────────────────────────────────────────────────────────────────
async def test_a_batch_carries_several_requests_in_one_call_with_their_own_statuses(graph_client, fake_graph, graph_calls):
    requests = await make_requests_list(graph_client, fake_graph)
    graph_calls.reset()
    batch = {f"create-{n}": requests.items.to_post_request_information(
        ListItem(fields=FieldValueSet(additional_data={"Title": f"P{n}"}))) for n in range(3)}
    batch["missing"] = requests.items.by_list_item_id("999").to_get_request_information()

    answers = await send_batch(graph_client, batch)

    assert {k: a.status for k, a in answers.items()} == {"create-0": 201, "create-1": 201, "create-2": 201, "missing": 404}
    assert answers["create-1"].body["fields"]["Title"] == "P1"
    assert answers["missing"].body["error"]["code"] == "itemNotFound"
    assert graph_calls.total == 1
    assert sorted(i.fields["Title"] for i in fake_graph.get_list("Solicitudes").items.values()) == ["P0", "P1", "P2"]


async def test_the_sdk_batch_reader_loses_json_bodies(graph_client, fake_graph):
    """Pins the msgraph-core 1.5.2 defects send_batch works around; if this starts failing, the SDK got fixed."""
    requests = await make_requests_list(graph_client, fake_graph)
    batch = BatchRequestContent()
    batch.add_request_information(requests.items.to_post_request_information(
        ListItem(fields=FieldValueSet(additional_data={"Title": "P"}))), "one")
    response = await graph_client.batch.post(batch)
    [(request_id, status)] = response.get_response_status_codes().items()
    assert status == 201 and request_id != "one"  # the id given was replaced
    assert response.responses[request_id].body is None  # the created item is lost


# ── upload sessions ─────────────────────────────────────────────────────────────────────
async def test_an_upload_resumes_from_next_expected_ranges_after_a_failed_chunk(graph_client, fake_graph):
    content = bytes(range(256)) * 4096  # 1 MiB
    session = await graph_client.drives.by_drive_id(fake_graph.drive_id).items.by_drive_item_id(
        "root:/Piezas/2025-001/master.mp4:").create_upload_session.post(CreateUploadSessionPostRequestBody(
            item=DriveItemUploadableProperties(additional_data={"@microsoft.graph.conflictBehavior": "rename"})))
    assert isinstance(session, UploadSession)
    chunk = CHUNK_UNIT
    fake_graph.fail_after_work(1, routes={"upload"})  # the first chunk is stored, but its answer is lost

    async with httpx.AsyncClient() as plain:  # the uploadUrl is pre-authenticated: no Authorization header
        lost = await plain.put(session.upload_url, content=content[:chunk],
                               headers={"Content-Range": f"bytes 0-{chunk - 1}/{len(content)}"})
        assert lost.status_code == 503
        again = await plain.put(session.upload_url, content=content[:chunk],
                                headers={"Content-Range": f"bytes 0-{chunk - 1}/{len(content)}"})
        assert again.status_code == 416  # sending the same range again is refused
        status = (await plain.get(session.upload_url)).json()
        assert status["nextExpectedRanges"] == [f"{chunk}-{len(content) - 1}"]
        start = int(status["nextExpectedRanges"][0].split("-")[0])
        while start < len(content):
            end = min(start + chunk, len(content))
            reply = await plain.put(session.upload_url, content=content[start:end],
                                    headers={"Content-Range": f"bytes {start}-{end - 1}/{len(content)}"})
            assert reply.status_code in (202, 201)
            start = end
        assert reply.status_code == 201
        assert reply.json()["name"] == "master.mp4"
        authorised = await plain.put(session.upload_url, headers={"Authorization": f"Bearer {fake_graph.token}"})
        assert authorised.status_code == 401

    assert fake_graph.file_content("Piezas/2025-001/master.mp4") == content


async def test_a_chunk_that_is_not_a_multiple_of_320_kib_is_refused(graph_client, fake_graph):
    session = await graph_client.drives.by_drive_id(fake_graph.drive_id).items.by_drive_item_id(
        "root:/a.bin:").create_upload_session.post(CreateUploadSessionPostRequestBody())
    async with httpx.AsyncClient() as plain:
        reply = await plain.put(session.upload_url, content=b"x" * 1000, headers={"Content-Range": "bytes 0-999/5000"})
    assert reply.status_code == 400


async def test_an_expired_upload_session_is_gone():
    async with FakeGraph(upload_session_ttl=timedelta(seconds=-1)) as graph:
        client = build_graph_client(graph_settings(graph), retry_base_delay=0)
        session = await client.drives.by_drive_id(graph.drive_id).items.by_drive_item_id(
            "root:/a.bin:").create_upload_session.post(CreateUploadSessionPostRequestBody())
        async with httpx.AsyncClient() as plain:
            reply = await plain.put(session.upload_url, content=b"x", headers={"Content-Range": "bytes 0-0/1"})
        await close_graph_client(client)
    assert reply.status_code == 404


async def test_a_folder_is_created_once_and_a_file_gets_a_sharing_link(graph_client, fake_graph):
    from msgraph.generated.drives.item.items.item.create_link.create_link_post_request_body import (
        CreateLinkPostRequestBody,
    )
    from msgraph.generated.models.drive_item import DriveItem
    from msgraph.generated.models.folder import Folder

    root = graph_client.drives.by_drive_id(fake_graph.drive_id).items.by_drive_item_id("root")
    folder = DriveItem(name="2025-001", folder=Folder(), additional_data={"@microsoft.graph.conflictBehavior": "fail"})
    created = await root.children.post(folder)
    with pytest.raises(APIError) as exists:
        await root.children.post(folder)
    assert exists.value.response_status_code == 409

    session = await graph_client.drives.by_drive_id(fake_graph.drive_id).items.by_drive_item_id(
        "root:/2025-001/guion.pdf:").create_upload_session.post(CreateUploadSessionPostRequestBody())
    async with httpx.AsyncClient() as plain:
        uploaded = (await plain.put(session.upload_url, content=b"%PDF-1.7", headers={"Content-Range": "bytes 0-7/8"})).json()
    assert uploaded["parentReference"]["id"] == created.id

    permission = await graph_client.drives.by_drive_id(fake_graph.drive_id).items.by_drive_item_id(
        uploaded["id"]).create_link.post(CreateLinkPostRequestBody(type="view", scope="organization"))
    assert permission.link.web_url.startswith("https://")


# ── groups (roles) ───────────────────────────────────────────────────────────────────────
async def test_group_members_are_read_across_pages(graph_client, fake_graph):
    fake_graph.add_group("g-coordinacion", [{"id": f"u{n}", "displayName": f"Persona {n}",
                                             "mail": f"p{n}@proinversion.gob.pe"} for n in range(7)])
    from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
        TransitiveMembersRequestBuilder,
    )
    page = await graph_client.groups.by_group_id("g-coordinacion").transitive_members.get(RequestConfiguration(
        query_parameters=TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(top=3)))
    mails = [m.mail for m in page.value]
    while page.odata_next_link:
        page = await graph_client.groups.by_group_id("g-coordinacion").transitive_members.with_url(page.odata_next_link).get()
        mails += [m.mail for m in page.value]
    assert mails == [f"p{n}@proinversion.gob.pe" for n in range(7)]


# ── authentication and settings ──────────────────────────────────────────────────────────
async def test_a_wrong_token_is_refused_by_graph(fake_graph):
    client = build_graph_client(graph_settings(fake_graph, graph_static_token="otro-token"), retry_base_delay=0)
    with pytest.raises(APIError) as refused:
        await client.users.by_user_id(MAILBOX).events.get()
    await close_graph_client(client)
    assert refused.value.response_status_code == 401


def test_the_static_token_is_refused_for_a_graph_that_is_not_on_loopback():
    with pytest.raises(GraphAuthError, match="loopback"):
        StaticTokenProvider("t", "https://graph.microsoft.com/v1.0")
    with pytest.raises(GraphAuthError, match="loopback"):
        build_graph_client(Settings(graph_static_token="t", graph_base_url="http://10.0.0.5/v1.0"))


async def test_the_static_token_goes_only_to_the_configured_host():
    provider = StaticTokenProvider("t", "http://127.0.0.1:8080/v1.0")
    assert await provider.get_authorization_token("http://127.0.0.1:8080/v1.0/sites") == "t"
    assert await provider.get_authorization_token("http://localhost:8080/upload-sessions/x") == ""


class FakeMsalApp:
    """Stands in for msal.ConfidentialClientApplication (msal refuses http:// authorities)."""

    built: list[dict] = []

    def __init__(self, client_id, client_credential, authority):
        FakeMsalApp.built.append({"client_id": client_id, "credential": client_credential, "authority": authority})
        self.calls = 0

    def acquire_token_for_client(self, scopes):
        self.calls += 1
        assert scopes == ["https://graph.microsoft.com/.default"]
        return {"access_token": f"token-{self.calls}", "token_type": "Bearer", "expires_in": 3599}


async def test_msal_tokens_use_the_certificate_and_are_asked_for_graph_hosts_only(tmp_path):
    key = tmp_path / "claqueta.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    FakeMsalApp.built.clear()
    provider = MsalTokenProvider("7f9c1c4e-0000-4000-8000-000000000001", "0b1a2c3d-0000-4000-8000-000000000002",
                                 certificate_path=key, certificate_thumbprint="A" * 40, app_factory=FakeMsalApp)

    token = await provider.get_authorization_token("https://graph.microsoft.com/v1.0/sites")
    elsewhere = await provider.get_authorization_token("https://proinversion.sharepoint.com/upload?x=1")

    assert token == "token-1" and elsewhere == ""
    built = FakeMsalApp.built[0]
    assert built["authority"] == "https://login.microsoftonline.com/7f9c1c4e-0000-4000-8000-000000000001"
    assert built["credential"]["thumbprint"] == "A" * 40


async def test_msal_failure_names_the_error():
    class Refusing(FakeMsalApp):
        def acquire_token_for_client(self, scopes):
            return {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}

    provider = MsalTokenProvider("t", "c", client_secret="s", app_factory=Refusing)
    with pytest.raises(GraphAuthError, match="invalid_client"):
        await provider.get_authorization_token("https://graph.microsoft.com/v1.0/me")


def test_settings_validation_names_every_missing_setting():
    with pytest.raises(SettingsError) as error:
        validate_graph_settings(Settings(graph_tenant_id="", graph_client_id="", sharepoint_site_id="", office_mailbox=""))
    message = str(error.value)
    for name in ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET", "SHAREPOINT_SITE_ID", "OFFICE_MAILBOX"):
        assert name in message


def test_settings_validation_names_malformed_ids_and_passes_good_ones():
    good = dict(graph_tenant_id="7f9c1c4e-0000-4000-8000-000000000001",
                graph_client_id="0b1a2c3d-0000-4000-8000-000000000002", graph_client_secret="s3cr3t",
                sharepoint_site_id="proinversion.sharepoint.com,11111111-2222-3333-4444-555555555555,"
                                   "66666666-7777-8888-9999-000000000000",
                office_mailbox=MAILBOX)
    validate_graph_settings(Settings(**good))

    with pytest.raises(SettingsError) as error:
        validate_graph_settings(Settings(**{**good, "graph_tenant_id": "proinversion", "sharepoint_site_id": "claqueta",
                                            "graph_base_url": "http://graph.example.com/v1.0"}))
    message = str(error.value)
    assert "GRAPH_TENANT_ID" in message and "SHAREPOINT_SITE_ID" in message and "GRAPH_BASE_URL" in message
    assert "GRAPH_CLIENT_ID" not in message
