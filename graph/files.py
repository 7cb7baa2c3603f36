"""Files through Microsoft Graph: uploads to the document library in resumable sessions, sharing links, the archive."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.api_error import APIError
from msgraph import GraphServiceClient
from msgraph.generated.drives.item.items.item.copy.copy_post_request_body import CopyPostRequestBody
from msgraph.generated.drives.item.items.item.create_link.create_link_post_request_body import CreateLinkPostRequestBody
from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (
    CreateUploadSessionPostRequestBody,
)
from msgraph.generated.models.drive_item_uploadable_properties import DriveItemUploadableProperties
from msgraph.generated.models.drive_item import DriveItem
from msgraph.generated.models.folder import Folder
from msgraph.generated.models.item_reference import ItemReference

CHUNK_UNIT = 320 * 1024  # Graph: every chunk but the last is a multiple of 320 KiB
DEFAULT_CHUNK = 10 * CHUNK_UNIT  # 3.125 MiB, well under the 60 MiB cap
MAX_RESUMES = 8
MAX_DOWNLOAD_BYTES = 2 * 1024 ** 3
_UNSAFE = re.compile(r'[\x00-\x1f"*:<>?/\\|#%]')


class UploadFailed(RuntimeError):
    """The upload session could not be completed (expired, or kept failing)."""


def _clean(component: str) -> str:
    """A SharePoint-safe file or folder name (it refuses these characters)."""
    cleaned = _UNSAFE.sub("-", component).strip(" .")
    if not cleaned:
        raise ValueError(f"Nombre de archivo o carpeta no válido: «{component}».")
    return cleaned


def _path(folder: str, name: str | None = None) -> str:
    parts = [_clean(p) for p in re.split(r"[\\/]+", folder or "") if p]
    if name is not None:
        parts.append(_clean(name))
    return "/".join(parts)


async def upload_in_chunks(upload_url: str, data: bytes, *, chunk_size: int = DEFAULT_CHUNK,
                           http: httpx.AsyncClient | None = None) -> dict:
    """PUT `data` to an upload session in 320 KiB-multiple chunks, resuming from nextExpectedRanges.

    The uploadUrl is pre-authenticated: a plain client, so no Authorization header goes with it.
    Returns the driveItem JSON Graph answers with the last chunk.
    """
    if chunk_size % CHUNK_UNIT:
        raise ValueError("chunk_size must be a multiple of 320 KiB")
    size = len(data)
    own = http is None
    plain = http or httpx.AsyncClient(timeout=120)
    try:
        start, resumes = 0, 0
        while True:
            end = min(start + chunk_size, size)
            try:
                answer = await plain.put(upload_url, content=data[start:end],
                                         headers={"Content-Range": f"bytes {start}-{end - 1}/{size}"})
                status = answer.status_code
            except httpx.TransportError:
                status = 0
            if status in (200, 201):
                return answer.json()
            if status == 202:
                start = end
                continue
            if status == 404:
                raise UploadFailed("La sesión de carga expiró o fue cancelada.")
            resumes += 1
            if resumes > MAX_RESUMES:
                raise UploadFailed(f"La carga falló {resumes} veces seguidas (último estado {status}).")
            # Ask the session where to go on: the failed chunk may have landed in full or not at all.
            state = (await plain.get(upload_url)).json()
            start = int(state["nextExpectedRanges"][0].split("-")[0])
    finally:
        if own:
            await plain.aclose()


class GraphFileStore:
    """FileStore port on one document library (drive). Ids are driveItem ids; urls are organisation sharing links."""

    def __init__(self, client: GraphServiceClient, drive_id: str, *, chunk_size: int = DEFAULT_CHUNK,
                 max_download_bytes: int = MAX_DOWNLOAD_BYTES) -> None:
        self.client = client
        self.drive_id = drive_id
        self.chunk_size = chunk_size
        self.max_download_bytes = max_download_bytes

    def _items(self):
        return self.client.drives.by_drive_id(self.drive_id).items

    async def put(self, folder: str, name: str, content: bytes) -> dict:
        """Upload to <folder>/<name> (folders are created on the way); the same name is replaced, so a retry
        of the same upload does not leave a second copy (the library keeps the earlier version)."""
        path = _path(folder, name)
        session = await self._items().by_drive_item_id(f"root:/{path}:").create_upload_session.post(
            CreateUploadSessionPostRequestBody(item=DriveItemUploadableProperties(
                additional_data={"@microsoft.graph.conflictBehavior": "replace"})))
        item = await upload_in_chunks(session.upload_url, content, chunk_size=self.chunk_size)
        link = await self._items().by_drive_item_id(item["id"]).create_link.post(
            CreateLinkPostRequestBody(type="view", scope="organization"))
        return {"id": item["id"], "url": link.link.web_url if link and link.link else item.get("webUrl", ""),
                "web_url": item.get("webUrl", ""), "path": path}

    async def copy_from_url(self, folder: str, name: str, url: str) -> dict:
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise ValueError(f"No se puede copiar desde «{url}»: solo enlaces http(s).")
        async with httpx.AsyncClient(timeout=120, follow_redirects=True) as plain:
            async with plain.stream("GET", url) as answer:
                answer.raise_for_status()
                chunks, total = [], 0
                async for chunk in answer.aiter_bytes():
                    total += len(chunk)
                    if total > self.max_download_bytes:
                        raise ValueError(f"El archivo de «{url}» supera el máximo permitido.")
                    chunks.append(chunk)
        return await self.put(folder, name, b"".join(chunks))

    async def archive(self, source_refs: list[str], path: str) -> dict:
        """Copy each stored file (by driveItem id) into `path` (Archivo/<año>/<mes>/<título>/); a web link
        becomes a .url shortcut there. Re-running after a partial failure replaces what was placed."""
        folder = _path(path)
        placed: list[str] = []
        parent_id = await self._ensure_folder(folder)
        for ref in source_refs:
            if urlsplit(ref).scheme.lower() in ("http", "https"):
                name = _shortcut_name(ref)
                await self.put(folder, name, f"[InternetShortcut]\r\nURL={ref}\r\n".encode("utf-8"))
                placed.append(name)
                continue
            source = await self._items().by_drive_item_id(ref).get()
            try:
                # Graph copies asynchronously (202 + a monitor URL); the copy shows up shortly after.
                await self._items().by_drive_item_id(ref).copy.post(CopyPostRequestBody(
                    parent_reference=ItemReference(drive_id=self.drive_id, id=parent_id), name=source.name,
                    additional_data={"@microsoft.graph.conflictBehavior": "replace"}))
            except APIError as exc:
                if exc.response_status_code != 409:  # already archived by an earlier attempt
                    raise
            placed.append(source.name)
        link = await self._items().by_drive_item_id(parent_id).create_link.post(
            CreateLinkPostRequestBody(type="view", scope="organization"))
        return {"path": folder, "url": link.link.web_url if link and link.link else "", "files": placed}

    async def _ensure_folder(self, folder: str) -> str:
        """Create each folder of the path that is missing; returns the last one's id."""
        parent = "root"
        for part in folder.split("/"):
            try:
                made = await self._items().by_drive_item_id(parent).children.post(DriveItem(
                    name=part, folder=Folder(), additional_data={"@microsoft.graph.conflictBehavior": "fail"}))
                parent = made.id
            except APIError as exc:
                if exc.response_status_code != 409:
                    raise
                here = "/".join(folder.split("/")[:folder.split("/").index(part) + 1])
                parent = (await self._items().by_drive_item_id(f"root:/{here}:").get()).id
        return parent


def _shortcut_name(url: str) -> str:
    parts = urlsplit(url)
    stem = parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.netloc
    return _clean(f"{parts.netloc} - {stem}"[:120]) + ".url"
