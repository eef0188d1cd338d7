"""A person in a browser, as far as the server can tell: cookies, pages, forms with
their CSRF token. Real HTTP against a live server (no JavaScript; the Playwright tests
cover that)."""

from __future__ import annotations

import html
import re

import httpx

from tests.support.server import TLS

_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class Browser:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            timeout=15,
            follow_redirects=False,
            headers={"accept": "text/html"},
            verify=TLS,
        )
        self.last: httpx.Response | None = None

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        self.last = self.http.get(path)
        return self.last

    def csrf(self, path: str | None = None) -> str:
        """The CSRF token of the last page (or of ``path``, fetched now)."""
        page = self.get(path) if path else self.last
        assert page is not None
        match = _CSRF.search(page.text)
        assert match, f"no CSRF token on {page.request.url}"
        return html.unescape(match.group(1))

    def post(
        self,
        path: str,
        data: dict[str, str] | None = None,
        *,
        csrf_from: str | None = None,
        csrf: str | None = None,
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf is None:
            csrf = self.csrf(csrf_from) if csrf_from else None
        if csrf is not None:
            form["csrf_token"] = csrf
        self.last = self.http.post(path, data=form)
        return self.last

    def sign_up(
        self, *, email: str, name: str = "Sam Signup", organisation: str = "Shop"
    ) -> httpx.Response:
        """Asks for an account; the link to finish it comes by e-mail (``finish_sign_up``)."""
        return self.post(
            "/signup",
            {"name": name, "email": email, "organisation_name": organisation},
            csrf_from="/signup",
        )

    def finish_sign_up(self, link: str, password: str) -> httpx.Response:
        return self.post(link, {"password": password}, csrf_from=link)

    def sign_in(self, email: str, password: str, *, next: str = "/") -> httpx.Response:
        return self.post(
            "/login", {"email": email, "password": password, "next": next}, csrf_from="/login"
        )

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get("cybergine_session")
