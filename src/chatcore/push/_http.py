"""What every push sender shares: an httpx client (owned or borrowed), timeouts, error mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from chatcore._extras import missing_extra
from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, InvalidRequest, Unavailable

try:
    import httpx
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("push", exc, needed_by="chatcore's push senders") from exc

__all__ = ["DEFAULT_TIMEOUT_S", "HttpSender", "httpx", "jwt", "private_key"]

DEFAULT_TIMEOUT_S = 10.0


class HttpSender(ClosingContext):
    """Base of the senders: ``http`` is borrowed (the caller closes it), else one is made.

    ``timeout_s`` bounds each request (connect, write, read). ``http2`` makes the owned
    client speak HTTP/2 (APNs needs it).
    """

    def __init__(
        self, http: httpx.AsyncClient | None, *, timeout_s: float, http2: bool, service: str
    ) -> None:
        if not timeout_s > 0:
            raise InvalidRequest(f"timeout_s must be positive, got {timeout_s}")
        self._service = service
        self._timeout = httpx.Timeout(timeout_s)
        self._owned = http is None
        self._http = http or httpx.AsyncClient(http2=http2, http1=not http2, timeout=self._timeout)
        self._closed = False

    async def aclose(self) -> None:
        """Close the client if this sender made it; later sends raise ChatcoreClosed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            await self._http.aclose()

    async def _post(
        self,
        url: str,
        *,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST; transport failures and timeouts become ``Unavailable``."""
        if self._closed:
            raise ChatcoreClosed(f"{type(self).__name__} used after aclose()")
        try:
            return await self._http.post(
                url, content=content, data=data, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise Unavailable(f"{self._service} timed out") from exc
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self._service} could not be reached: {exc}") from exc

    def _refused(self, response: httpx.Response) -> Unavailable | InvalidRequest:
        """The error for a response that is neither success nor "gone"."""
        what = f"{self._service} answered {response.status_code}: {response.text[:200]}"
        if response.status_code == 429 or response.status_code >= 500:
            return Unavailable(what)
        return InvalidRequest(what)


def private_key(
    pem: str, algorithm: Literal["ES256", "RS256"], what: str
) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """The PEM key ``pem`` if it signs ``algorithm``; else ``InvalidRequest`` naming ``what``."""
    kind = ec.EllipticCurvePrivateKey if algorithm == "ES256" else rsa.RSAPrivateKey
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"{what} is not a PEM private key: {exc}") from exc
    if not isinstance(key, kind):
        raise InvalidRequest(f"{what} is not an {algorithm} key")
    return key
