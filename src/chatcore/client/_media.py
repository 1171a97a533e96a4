"""Media over HTTP for the SDK: upload a file, download an attachment (needs httpx).

The server's HTTP side is the WebSocket URL's origin and path less ``/ws``
(``ws://host:8000/ws`` gives ``http://host:8000/``). Uploads stream the file;
downloads follow the signed URL a message carries and, when it has expired, ask the
server for a fresh one (``/media/{blob}/link``, members only).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import anyio
import msgspec

from chatcore._extras import missing_extra
from chatcore.client._connection import TokenProvider
from chatcore.errors import (
    BlobTooLarge,
    ChatcoreError,
    InvalidRequest,
    NotFound,
    NotMember,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from chatcore.protocol import AttachmentView, Message, MessageKind

__all__ = ["DEFAULT_DOWNLOAD_MAX_BYTES", "MediaTransfer", "MediaUpload", "http_base"]

DEFAULT_DOWNLOAD_MAX_BYTES = 64 * 1024 * 1024
"""The most bytes :meth:`MediaTransfer.download` reads unless told otherwise."""
_CHUNK = 64 * 1024


class MediaUpload(msgspec.Struct, frozen=True, kw_only=True):
    """What the server answered to an upload."""

    blob: str
    kind: str
    """``image``, ``video``, ``audio`` or ``file`` (the rules the bytes passed)."""
    size: int
    mime: str
    """Sniffed from the bytes by the server."""
    thumbnail: str | None = None
    name: str = ""

    @property
    def message_kind(self) -> MessageKind:
        """The kind of message that carries this upload (audio goes as a ``file``)."""
        if self.kind == "image":
            return "image"
        if self.kind == "video":
            return "video"
        return "file"

    def attachment(self, name: str | None = None) -> AttachmentView:
        """The ``attachment`` of a ``send`` that refers to this upload."""
        return AttachmentView(
            blob=self.blob,
            name=self.name if name is None else name,
            size=self.size,
            mime=self.mime,
            thumbnail=self.thumbnail,
        )


def http_base(ws_url: str) -> str:
    """The HTTP base URL of a server from its WebSocket URL (ending in ``/``)."""
    scheme, sep, rest = ws_url.partition("://")
    http = {"ws": "http", "wss": "https"}.get(scheme)
    if not sep or http is None:
        raise ValueError(f"not a WebSocket URL: {ws_url!r}")
    if rest.endswith("/ws"):
        rest = rest[: -len("/ws")]
    return f"{http}://{rest.rstrip('/')}/"


class MediaTransfer:
    """Uploads and downloads of one client (a user's token, a server's base URL)."""

    def __init__(self, base_url: str, token_provider: TokenProvider, *, timeout_s: float) -> None:
        self.base_url = base_url
        self._token = token_provider
        self._timeout = timeout_s

    async def _auth(self) -> dict[str, str]:
        token = self._token()
        if inspect.isawaitable(token):
            token = await token
        return {"Authorization": f"Bearer {token}"}

    def _client(self) -> Any:
        try:
            import httpx
        except ImportError as exc:
            raise missing_extra("client", exc, needed_by="ChatClient.upload/download") from exc
        return httpx.AsyncClient(base_url=self.base_url, timeout=self._timeout)

    async def upload(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        name: str | None = None,
        kind: str | None = None,
    ) -> MediaUpload:
        """Upload bytes or a file (streamed); ``kind`` None lets the server pick it from
        the bytes. Raises BlobTooLarge, InvalidRequest (a type the kind refuses, ...),
        Unauthorized, Unavailable."""
        if isinstance(source, bytes | bytearray):
            content: Any = bytes(source)
            name = name or "file"
        else:
            path = Path(source)
            if not await anyio.Path(path).is_file():
                raise InvalidRequest(f"no file {path}")
            content = _file_chunks(path)
            name = name or path.name
        params = {"name": name}
        if kind is not None:
            params["kind"] = kind
        headers = {**await self._auth(), "Content-Type": "application/octet-stream"}
        async with self._client() as http:
            try:
                answer = await http.post("media", params=params, content=content, headers=headers)
            except Exception as exc:
                raise _unavailable(exc) from exc
        if answer.status_code != 201:
            raise _error_of(answer)
        return msgspec.convert(answer.json(), MediaUpload)

    async def download(
        self,
        target: Message | AttachmentView | str,
        *,
        thumbnail: bool = False,
        max_bytes: int = DEFAULT_DOWNLOAD_MAX_BYTES,
    ) -> bytes:
        """The bytes of a message's attachment (or its thumbnail), an attachment or a URL.

        A message's expired URL is renewed once through the server. Raises
        BlobTooLarge over ``max_bytes``, Unauthorized for an expired or forged URL,
        NotFound, NotMember, Unavailable.
        """
        url = _url_of(target, thumbnail=thumbnail)
        async with self._client() as http:
            try:
                return await _fetch(http, url, max_bytes)
            except Unauthorized:
                if not isinstance(target, Message) or target.attachment is None:
                    raise
            fresh = await self._renew(http, target, thumbnail=thumbnail)
            return await _fetch(http, fresh, max_bytes)

    async def _renew(self, http: Any, message: Message, *, thumbnail: bool) -> str:
        a = message.attachment
        if a is None or a.blob is None:
            raise InvalidRequest("the message refers to no uploaded blob")
        params = {"chat": message.chat, "seq": str(message.seq)}
        try:
            answer = await http.get(
                f"media/{a.blob}/link", params=params, headers=await self._auth()
            )
        except Exception as exc:
            raise _unavailable(exc) from exc
        if answer.status_code != 200:
            raise _error_of(answer)
        links = answer.json()
        url = links.get("thumbnail_url") if thumbnail else links.get("url")
        if not isinstance(url, str):
            raise NotFound("the message has no such link")
        return url


def _url_of(target: Message | AttachmentView | str, *, thumbnail: bool) -> str:
    if isinstance(target, str):
        return target
    a = target.attachment if isinstance(target, Message) else target
    if a is None:
        raise InvalidRequest("the message has no attachment")
    url = a.thumbnail_url if thumbnail else a.url
    if url is None:
        raise InvalidRequest("the attachment carries no URL (not from the server?)")
    return url


async def _fetch(http: Any, url: str, max_bytes: int) -> bytes:
    url = urljoin(str(http.base_url), url)  # a path is on the server's origin
    try:
        async with http.stream("GET", url) as answer:
            if answer.status_code != 200:
                await answer.aread()
                raise _error_of(answer)
            parts: list[bytes] = []
            size = 0
            async for chunk in answer.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise BlobTooLarge(
                        f"the download is over {max_bytes} bytes", limit_bytes=max_bytes
                    )
                parts.append(chunk)
            return b"".join(parts)
    except ChatcoreError:
        raise
    except Exception as exc:
        raise _unavailable(exc) from exc


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as f:
        while chunk := await f.read(_CHUNK):
            yield chunk


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable(f"the media request failed: {exc}")


def _error_of(answer: Any) -> ChatcoreError:
    try:
        body = answer.json()
        message = str(body.get("message", answer.text))
        code = body.get("code")
    except Exception:
        message, code = answer.text[:200], None
    status = answer.status_code
    if code == "too_large" or status == 413:
        return BlobTooLarge(message, limit_bytes=0)
    if status == 401 or (status == 403 and code == "unauthorized"):
        return Unauthorized(message)
    if code == "not_member":
        return NotMember(message)
    if status == 404:
        return NotFound(message)
    if status == 429:
        return RateLimited(message, retry_after_ms=1000)
    if 400 <= status < 500:
        return InvalidRequest(message)
    return Unavailable(f"HTTP {status}: {message}")
