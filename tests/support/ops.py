"""An operator at the ops console, through the Flask test client: signs in, reads pages, posts forms with the CSRF
token the page carries."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from gateway.state import operators

PASSWORD = "correct horse battery"


def add_operator(app, name: str, role: str, password: str = PASSWORD) -> None:
    runtime = app.extensions["tdbot"]
    operators.save(runtime.redis, runtime.keys, operators.new(name, role, password, datetime.now(UTC)))


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Operator:
    def __init__(self, app, name: str, role: str) -> None:
        add_operator(app, name, role)
        self.app, self.name = app, name
        self.client = app.test_client()

    def sign_in(self, password: str = PASSWORD):
        token = csrf_token(self.client.get("/ops/sign-in").get_data(as_text=True))
        return self.client.post("/ops/sign-in", data={"name": self.name, "password": password, "csrf_token": token})

    def get(self, path: str):
        return self.client.get(path)

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    def post(self, path: str, form: dict | None = None, page: str | None = None):
        """Post a form from `page` (default: `path` without its last part), with that page's CSRF token."""
        source = page or path.rsplit("/", 1)[0]
        token = csrf_token(self.page(source))
        return self.client.post(path, data={**(form or {}), "csrf_token": token})


def signed_in(app, name: str, role: str) -> Operator:
    """An operator of `role`, signed in to the console."""
    operator = Operator(app, name, role)
    assert operator.sign_in().status_code == 302, f"{name} could not sign in"
    return operator
