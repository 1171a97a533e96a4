"""Media over HTTP: ``POST /media`` uploads, ``GET /media/{blob}`` signed downloads.

Upload: the body is the file's bytes (streamed, never whole in memory), the user's
token in ``Authorization: Bearer``, ``?kind=image|video|audio|file`` (omitted: the
kind whose types hold the sniffed type, else ``file``) and an optional ``?name=``.
The bytes pass :func:`chatcore.media.upload` (type sniffed from the bytes, the
kind's size limit), an image gets a thumbnail, and the upload is recorded in the
:class:`~chatcore.uploads.UploadLedger` for that user. The answer is
``201 {"blob","kind","size","mime","thumbnail"?,"name"?}``.

Download: only through the URLs the server signs (:class:`MediaLinks`) in the
messages it sends to a chat's members. The bytes are always streamed by this server
(also over S3), so every answer carries ``X-Content-Type-Options: nosniff``, a
sandboxing CSP, and ``Content-Disposition: attachment`` for anything but an image.

``GET /media/{blob}/link?chat=&seq=`` (with the token) signs fresh URLs for the
attachment of message ``seq`` of a chat the user is a member of: the page calls it
when a link has expired.

Errors answer ``{"code","message"}`` with the HTTP status of the code (``too_large``
413, ``invalid`` 400, ``unauthorized`` 401, ``not_member`` 403, ``not_found`` 404,
``unavailable`` 503).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chatcore._clock import wall_ms
from chatcore.errors import (
    BlobTooLarge,
    ChatcoreError,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)
from chatcore.media import (
    DEFAULT_GRACE_MS,
    DEFAULT_URL_TTL_S,
    SNIFF_BYTES,
    BlobInfo,
    BlobStore,
    MediaKind,
    MediaRules,
    ThumbnailOptions,
    UrlSigner,
    make_thumbnail,
    sniff_mime,
    sweep_unreferenced,
    upload,
)
from chatcore.node import ChatNode
from chatcore.protocol import AttachmentView, Message
from chatcore.uploads import Upload

__all__ = ["MediaLinks", "MediaRoutes", "MediaSettings"]

_STATUS = {
    "too_large": 413,
    "invalid": 400,
    "bad_frame": 400,
    "unauthorized": 401,
    "not_member": 403,
    "not_found": 404,
    "rate_limited": 429,
    "unavailable": 503,
}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


@dataclass(kw_only=True)
class MediaSettings:
    """How the server takes and serves media. Every field has a safe default."""

    rules: MediaRules = field(default_factory=MediaRules)
    """Per kind, the sniffed types accepted and the size limit (see ``MediaRules``)."""
    thumbnails: ThumbnailOptions = field(default_factory=ThumbnailOptions)
    """How image thumbnails are made."""
    url_ttl_s: int = DEFAULT_URL_TTL_S
    """How long a signed download URL lives (5 minutes)."""
    url_prefix: str = "/media/"
    """The path signed URLs start with: where this app's ``/media`` route is seen from
    the browser (``/chat/media/`` when the app is mounted under ``/chat``)."""
    sweep_every_s: float | None = 3600.0
    """How often the retention sweep runs (None: never)."""
    sweep_grace_ms: int = DEFAULT_GRACE_MS
    """A blob no message referenced is deleted once this old (a day)."""


class MediaLinks:
    """Puts signed, short-lived ``url``/``thumbnail_url`` into the message frames the
    server sends (only members get message frames)."""

    def __init__(
        self,
        signer: UrlSigner,
        *,
        ttl_s: int = DEFAULT_URL_TTL_S,
        prefix: str = "/media/",
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.signer = signer
        self._ttl = ttl_s
        self._prefix = prefix
        self._clock = clock

    def url(self, blob: str) -> str:
        signed = self.signer.sign(blob, now_s=self._clock() // 1000, ttl_s=self._ttl)
        return f"{self._prefix}{blob}?{signed.query()}"

    def attachment(self, a: AttachmentView) -> AttachmentView:
        """``a`` with fresh signed URLs (unchanged if it names no blob)."""
        if a.blob is None:
            return a
        thumb = None if a.thumbnail is None else self.url(a.thumbnail)
        return msgspec.structs.replace(a, url=self.url(a.blob), thumbnail_url=thumb)

    def message(self, frame: Message) -> Message:
        """``frame`` with its attachment's URLs signed."""
        if frame.attachment is None or frame.attachment.blob is None:
            return frame
        return msgspec.structs.replace(frame, attachment=self.attachment(frame.attachment))


class MediaRoutes:
    """The media routes of one server: ``routes()`` to mount, ``sweep_forever`` to run."""

    def __init__(
        self,
        node: Callable[[], ChatNode],
        verify_token: Callable[[str], str],
        links: MediaLinks,
        settings: MediaSettings,
        *,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self._node = node
        self._verify = verify_token
        self.links = links
        self.settings = settings
        self._clock = clock

    def routes(self) -> list[Route]:
        return [
            Route("/media", self.upload, methods=["POST"]),
            Route("/media/{blob}", self.download, methods=["GET", "HEAD"]),
            Route("/media/{blob}/link", self.link, methods=["GET"]),
        ]

    def _blobs(self) -> BlobStore:
        blobs = self._node().backends.blobs
        if blobs is None:
            raise Unavailable("this server has no blob store (media is off)")
        return blobs

    def _user(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send the user's token as `Authorization: Bearer <token>`")
        return self._verify(token.strip())

    async def upload(self, request: Request) -> Response:
        try:
            user = self._user(request)
            blobs = self._blobs()
            kind = _kind(request.query_params.get("kind"))
            name = request.query_params.get("name")
            if name is not None and len(name) > 1024:
                raise InvalidRequest("a name holds at most 1024 characters")
            rules = self.settings.rules
            limit = _limit(rules, kind)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise BlobTooLarge(f"the upload is over {limit} bytes", limit_bytes=limit)
            stream: AsyncIterator[bytes] = request.stream()
            if kind is None:
                head, stream = await _peek(stream)
                kind = _infer_kind(rules, head)
            info = await upload(blobs, stream, kind=kind, rules=rules)
            thumbnail = await self._thumbnail(blobs, kind, info)
            record = Upload(
                blob=info.id,
                user=user,
                kind=kind.value,
                size=info.size,
                mime=info.mime,
                uploaded_ms=self._clock(),
                thumbnail=thumbnail,
            )
            await self._node().backends.uploads.record(record)
        except ClientDisconnect:
            return _error(InvalidRequest("the upload was cut off"))
        except ChatcoreError as exc:
            return _error(exc)
        answer: dict[str, Any] = {
            "blob": info.id,
            "kind": kind.value,
            "size": info.size,
            "mime": info.mime,
        }
        if thumbnail is not None:
            answer["thumbnail"] = thumbnail
        if name is not None:
            answer["name"] = name
        return JSONResponse(answer, status_code=201)

    async def _thumbnail(self, blobs: BlobStore, kind: MediaKind, info: BlobInfo) -> str | None:
        if kind is not MediaKind.IMAGE:
            return None
        thumb = await make_thumbnail(
            blobs, info.id, rules=self.settings.rules, options=self.settings.thumbnails
        )
        return thumb.id

    async def download(self, request: Request) -> Response:
        blob = request.path_params["blob"]
        try:
            q = request.query_params
            self.links.signer.verify(
                blob, q.get("expires"), q.get("sig"), now_s=self._clock() // 1000
            )
            blobs = self._blobs()
            info = await blobs.stat(blob)
        except Unauthorized as exc:
            return _error(exc, status=403)
        except ChatcoreError as exc:
            return _error(exc)
        image = info.mime in self.settings.rules.rule(MediaKind.IMAGE).mimes
        headers = {
            **_SECURITY_HEADERS,
            "Content-Length": str(info.size),
            "Content-Disposition": "inline" if image else "attachment",
            "Cache-Control": "private, max-age=60",
        }
        if request.method == "HEAD":
            return Response(headers=headers, media_type=info.mime)
        return StreamingResponse(_bytes_of(blobs, blob), headers=headers, media_type=info.mime)

    async def link(self, request: Request) -> Response:
        blob = request.path_params["blob"]
        try:
            user = self._user(request)
            chat = request.query_params.get("chat", "")
            seq = request.query_params.get("seq", "")
            if not chat or not seq.isdigit():
                raise InvalidRequest("give ?chat=<chat id>&seq=<the message's seq>")
            page = await self._node().history(user, chat, after=int(seq) - 1, limit=1)
            found = [m for m in page.messages if m.seq == int(seq)]
            a = found[0].attachment if found else None
            if a is None or blob not in (a.blob, a.thumbnail):
                raise NotFound(f"message {seq} of {chat!r} has no blob {blob}")
        except ChatcoreError as exc:
            return _error(exc)
        answer = {"url": self.links.url(a.blob)}
        if a.thumbnail:
            answer["thumbnail_url"] = self.links.url(a.thumbnail)
        return JSONResponse(answer)

    async def sweep_forever(self) -> None:
        """Run the retention sweep every ``sweep_every_s`` (returns at once if None)."""
        every = self.settings.sweep_every_s
        if every is None:
            return
        while True:
            await anyio.sleep(every)
            await self.sweep()

    async def sweep(self) -> list[str]:
        """One retention sweep now; the deleted blob ids ([] without a blob store)."""
        node = self._node()
        blobs = node.backends.blobs
        if blobs is None:
            return []
        try:
            return await sweep_unreferenced(
                blobs, node.backends.uploads, grace_ms=self.settings.sweep_grace_ms
            )
        except Unavailable:
            return []


def _kind(value: str | None) -> MediaKind | None:
    if value is None or value == "":
        return None
    try:
        return MediaKind(value)
    except ValueError:
        kinds = ", ".join(k.value for k in MediaKind)
        raise InvalidRequest(f"kind is one of {kinds}; got {value!r:.40}") from None


def _limit(rules: MediaRules, kind: MediaKind | None) -> int:
    if kind is not None:
        return rules.rule(kind).max_bytes
    limits = []
    for each in MediaKind:
        try:
            limits.append(rules.rule(each).max_bytes)
        except InvalidRequest:
            continue
    if not limits:
        raise InvalidRequest("no kind of upload is allowed")
    return max(limits)


def _infer_kind(rules: MediaRules, head: bytes) -> MediaKind:
    mime = sniff_mime(head)
    for kind in (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.AUDIO):
        try:
            if mime in rules.rule(kind).mimes:
                return kind
        except InvalidRequest:
            continue
    return MediaKind.FILE


async def _peek(stream: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first :data:`SNIFF_BYTES` (or all of a shorter stream) and the whole stream."""
    first: list[bytes] = []
    size = 0
    async for chunk in stream:
        first.append(chunk)
        size += len(chunk)
        if size >= SNIFF_BYTES:
            break

    async def replay() -> AsyncIterator[bytes]:
        for chunk in first:
            yield chunk
        async for chunk in stream:
            yield chunk

    return b"".join(first), replay()


async def _bytes_of(blobs: BlobStore, blob: str) -> AsyncIterator[bytes]:
    async with blobs.open(blob) as chunks:
        async for chunk in chunks:
            yield chunk


def _error(exc: ChatcoreError, *, status: int | None = None) -> JSONResponse:
    code = exc.code
    headers = {"WWW-Authenticate": "Bearer"} if code == "unauthorized" and status is None else None
    return JSONResponse(
        {"code": code, "message": exc.message},
        status_code=status or _STATUS.get(code, 500),
        headers=headers,
    )
