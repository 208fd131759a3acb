"""Client address, scheme and origin behind proxies: X-Forwarded-* count only from trusted peers."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from errors import AppError
from handlers.security import check_csrf, client_address, cookie_secure, request_origin
from settings import Settings

TRUSTING = Settings.for_tests(trusted_proxies=("10.0.0.0/8",))
PLAIN = Settings.for_tests()


def request(peer: str, headers: dict[str, str], method: str = "GET", scheme: str = "http") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "bangui.example", **headers}.items()]
    return Request({"type": "http", "method": method, "scheme": scheme, "path": "/", "headers": raw,
                    "client": (peer, 5000), "server": ("bangui.example", 80), "query_string": b""})


def test_untrusted_peer_headers_are_ignored() -> None:
    r = request("203.0.113.9", {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"})
    assert client_address(r, TRUSTING) == "203.0.113.9"
    assert cookie_secure(r, TRUSTING) is False
    assert client_address(r, PLAIN) == "203.0.113.9"


def test_trusted_proxy_gives_the_nearest_untrusted_hop() -> None:
    r = request("10.0.0.2", {"X-Forwarded-For": "198.51.100.66, 198.51.100.1, 10.0.0.7",
                             "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"})
    assert client_address(r, TRUSTING) == "198.51.100.1"  # the first stranger from our side, not a spoofable head
    assert cookie_secure(r, TRUSTING) is True
    assert request_origin(r, TRUSTING) == "https://public.example"


def test_same_origin_behind_a_tls_proxy_passes_csrf() -> None:
    headers = {"X-Forwarded-Proto": "https", "Origin": "https://bangui.example"}
    check_csrf(request("10.0.0.2", headers, "POST"), TRUSTING)
    with pytest.raises(AppError) as refused:
        check_csrf(request("203.0.113.9", headers, "POST"), TRUSTING)  # untrusted: our origin is http://
    assert refused.value.code == "csrf_rejected"


def test_safe_methods_are_never_csrf_checked() -> None:
    check_csrf(request("203.0.113.9", {"Sec-Fetch-Site": "cross-site"}, "GET"), PLAIN)


def test_cookie_secure_setting_forces_the_flag() -> None:
    assert cookie_secure(request("203.0.113.9", {}), Settings.for_tests(cookie_secure=True)) is True
    assert cookie_secure(request("203.0.113.9", {}, scheme="https"), PLAIN) is True
