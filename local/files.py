"""Files on the embedded default: a folder tree under the data folder that keeps every version it is given."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import aiohttp

MAX_DOWNLOAD_BYTES = 2 * 1024 ** 3
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f<>:"|?*]')
_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class UnsafePath(ValueError):
    """A folder or file name that would leave the store's root; refused, never cleaned up silently."""


def key_filename(key: str, suffix: str) -> str:
    """A file name for an idempotency key: readable, and distinct for distinct keys."""
    name = _KEY_CHARS.sub("_", key).strip("._") or "sin-nombre"
    if name != key or len(name) > 100:  # two keys that clean up alike must not share a file
        name = f"{name[:100]}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:10]}"
    return name + suffix


def write_atomically(path: Path, content: bytes) -> None:
    """A crash mid-write leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".writing-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FolderFileStore:
    """FileStore port on a local folder. Ids are paths relative to the root; urls are file:// URIs."""

    def __init__(self, root: str | Path, *, max_download_bytes: int = MAX_DOWNLOAD_BYTES) -> None:
        self.root = Path(root).resolve()
        self.max_download_bytes = max_download_bytes

    async def put(self, folder: str, name: str, content: bytes) -> dict:
        directory, name = self._directory(folder), _component(name, "nombre de archivo")
        tmp = self._temp_in(directory)
        tmp.write_bytes(content)
        return self._result(self._place(tmp, directory, name))

    async def copy_from_url(self, folder: str, name: str, url: str) -> dict:
        directory, name = self._directory(folder), _component(name, "nombre de archivo")
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            tmp = await self._download(url, directory)
        elif scheme == "file":
            source = self._local_source(url)
            tmp = self._temp_in(directory)
            await asyncio.to_thread(shutil.copyfile, source, tmp)
        else:
            raise ValueError(f"No se puede copiar desde «{url}»: solo enlaces http(s) o file://.")
        return self._result(self._place(tmp, directory, name))

    async def archive(self, source_refs: list[str], path: str) -> dict:
        """Copy each referenced file into `path`; a web link becomes a .url shortcut beside them.

        Running it again after a partial failure skips what was already copied with the same content.
        """
        directory = self._directory(path)
        placed: list[str] = []
        for ref in source_refs:
            scheme = urlsplit(ref).scheme.lower()
            tmp = self._temp_in(directory)
            if scheme in ("http", "https"):
                tmp.write_bytes(f"[InternetShortcut]\r\nURL={ref}\r\n".encode("utf-8"))
                name = _shortcut_name(ref)
            else:
                source = self._local_source(ref) if scheme == "file" else self._inside(ref)
                if not source.is_file():
                    tmp.unlink(missing_ok=True)
                    raise FileNotFoundError(f"No se encontró el archivo «{ref}» para archivarlo.")
                await asyncio.to_thread(shutil.copyfile, source, tmp)
                name = source.name
            placed.append(self._place(tmp, directory, name, reuse_identical=True).name)
        return {"path": directory.relative_to(self.root).as_posix(), "url": directory.as_uri(), "files": placed}

    # ── Paths ──

    def _directory(self, folder: str) -> Path:
        parts = [p for p in re.split(r"[\\/]+", folder or "") if p]
        if folder and (folder.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", folder)):
            raise UnsafePath(f"Ruta absoluta no permitida: «{folder}».")
        directory = self.root.joinpath(*(_component(p, "carpeta") for p in parts))
        self._check_inside(directory, folder)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _inside(self, relative: str) -> Path:
        """A stored file given by its id (a path relative to the root)."""
        pure = PurePosixPath(relative.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts:
            raise UnsafePath(f"Ruta fuera del almacén: «{relative}».")
        path = self.root.joinpath(*pure.parts)
        self._check_inside(path, relative)
        return path

    def _local_source(self, url: str) -> Path:
        """A file:// URL, accepted only inside the store: users must not copy the server's own files."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise UnsafePath(f"Solo se aceptan archivos locales: «{url}».")
        path = Path(url2pathname(unquote(parts.path)))
        self._check_inside(path, url)
        if not path.is_file():
            raise FileNotFoundError(f"No se encontró el archivo «{url}».")
        return path.resolve()

    def _check_inside(self, path: Path, shown: str) -> None:
        if not path.resolve().is_relative_to(self.root):
            raise UnsafePath(f"Ruta fuera del almacén: «{shown}».")

    # ── Storing ──

    def _temp_in(self, directory: Path) -> Path:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-", suffix=".tmp")
        os.close(fd)
        return Path(tmp)

    def _place(self, tmp: Path, directory: Path, name: str, *, reuse_identical: bool = False) -> Path:
        """Give the finished temp file its name: the name itself, or "name (v2)", "(v3)"… if taken."""
        stem, suffix = _split(name)
        version = 1
        try:
            while True:
                target = directory / (name if version == 1 else f"{stem} (v{version}){suffix}")
                if reuse_identical and target.is_file() and _same_content(target, tmp):
                    return target
                try:
                    os.link(tmp, target)  # fails if the name is taken, even by a concurrent writer
                    return target
                except FileExistsError:
                    version += 1
        finally:
            tmp.unlink(missing_ok=True)

    async def _download(self, url: str, directory: Path) -> Path:
        tmp = self._temp_in(directory)
        size = 0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(url) as response:
                    if response.status >= 400:
                        raise OSError(f"La descarga de «{url}» respondió {response.status}.")
                    with tmp.open("wb") as fh:
                        async for chunk in response.content.iter_chunked(256 * 1024):
                            size += len(chunk)
                            if size > self.max_download_bytes:
                                raise OSError(f"El archivo de «{url}» supera el tamaño máximo permitido.")
                            fh.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _result(self, path: Path) -> dict:
        return {"id": path.relative_to(self.root).as_posix(), "url": path.as_uri(), "name": path.name,
                "size": path.stat().st_size}


def _component(name: str, what: str) -> str:
    """One path component, refused if it could climb out or name a folder; odd characters replaced."""
    if not name or name.strip() in (".", "..") or "/" in name or "\\" in name:
        raise UnsafePath(f"{what.capitalize()} no permitido: «{name}».")
    cleaned = _UNSAFE_CHARS.sub("_", name).strip().rstrip(".")
    if not cleaned or cleaned in (".", ".."):
        raise UnsafePath(f"{what.capitalize()} no permitido: «{name}».")
    return cleaned


def _split(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if stem else (name, "")


def _shortcut_name(url: str) -> str:
    parts = urlsplit(url)
    last = unquote(parts.path.rstrip("/").rpartition("/")[2]) or parts.netloc or "enlace"
    try:
        return _component(last, "enlace") + ".url"
    except UnsafePath:
        return "enlace.url"


def _same_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            block = fa.read(1024 * 1024)
            if block != fb.read(1024 * 1024):
                return False
            if not block:
                return True
