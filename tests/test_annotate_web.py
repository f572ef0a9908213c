from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from annotate_support import XSS, live_server, make_item, make_store, rows

from annotation.queue import Queue
from annotation.sync import sync_routed
from core.schema import from_rows, messages


@pytest.fixture
def served(tmp_path):
    store = make_store(tmp_path / "store", routed=3, accepted=1)
    queue = Queue.for_dataset(store, "demo", seed=1)
    sync_routed(queue, store, "demo")
    token = queue.add_annotator("ann")
    with live_server(queue) as url:
        yield url, queue, token


def login(url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=url)
    page = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    done = client.post("/login", data={"token": token, "nonce": nonce})
    assert done.status_code == 303 and done.headers["location"] == "/"
    return client


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_every_page_and_call_needs_a_session(served):
    url, _, _ = served
    with httpx.Client(base_url=url) as anon:
        assert anon.get("/").status_code == 303
        assert anon.get("/").headers["location"] == "/login"
        for path in ("/api/next", "/api/status", "/api/openapi.json"):
            assert anon.get(path).status_code == 401, path
        assert anon.post("/api/submit", json={"item_id": "x", "choice": "A"}).status_code == 401
        assert anon.get("/api/next", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert anon.get("/docs").status_code == 404


def test_login_sets_a_strict_httponly_cookie_and_needs_its_nonce(served):
    url, _, token = served
    with httpx.Client(base_url=url) as client:
        client.get("/login")
        assert client.post("/login", data={"token": token, "nonce": "forged"}).status_code == 403
        page = client.get("/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
        bad = client.post("/login", data={"token": "wrong", "nonce": nonce})
        assert bad.headers["location"].startswith("/login?error=")
    with httpx.Client(base_url=url) as client:
        page = client.get("/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
        done = client.post("/login", data={"token": token, "nonce": nonce})
        cookie = done.headers["set-cookie"]
        assert "td_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "script-src 'self'" in client.get("/").headers["content-security-policy"]


def test_posts_need_the_csrf_token(served):
    url, queue, token = served
    client = login(url, token)
    page = client.get("/")
    item = re.search(r'name="item_id" value="([^"]+)"', page.text).group(1)
    assert client.post("/submit", data={"item_id": item, "choice": "A"}).status_code == 403
    assert client.post("/submit", data={"item_id": item, "choice": "A", "csrf": "x"}).status_code == 403
    assert client.post("/api/submit", json={"item_id": item, "choice": "A"}).status_code == 403
    assert rows(queue.path, "SELECT COUNT(*) FROM responses") == [(0,)]
    ok = client.post(
        "/submit", data={"item_id": item, "choice": "A", "csrf": csrf_of(page.text), "flags": "sycophantic"}
    )
    assert ok.status_code == 303
    assert rows(queue.path, "SELECT annotator, flags FROM responses") == [("ann", '["sycophantic"]')]


def test_model_text_is_escaped(tmp_path):
    store = make_store(tmp_path / "store", routed=0, accepted=1)
    bad = make_item(1, status="routed")
    bad["chosen"] = messages("assistant", XSS)
    bad["rejected"] = messages("assistant", XSS)
    queue = Queue.for_dataset(store, "demo")
    queue.add_items(from_rows([bad]), kind="routed", source="demo@v1")
    token = queue.add_annotator("ann")
    with live_server(queue) as url:
        html = login(url, token).get("/").text
    assert "<script>window" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "onerror=&#34;window.__pwned = 2&#34;" in html


def test_json_api_round_trip_and_openapi(served):
    url, queue, token = served
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth) as api:
        spec = api.get("/api/openapi.json").json()
        assert {"/api/next", "/api/submit", "/api/status", "/api/skip"} <= set(spec["paths"])
        assert "/" not in spec["paths"]
        task = api.get("/api/next").json()
        assert task["trait"] == "truthfulness" and task["trait_definition"].startswith("The response asserts")
        assert {task["response_a"][0]["content"][:4], task["response_b"][0]["content"][:4]} == {
            "Good",
            "Bad ",
        }
        out = api.post(
            "/api/submit", json={"item_id": task["item_id"], "choice": "tie", "note": "close"}
        ).json()
        assert out["recorded"] is True and out["progress"]["mine"] == 1
        again = api.post("/api/submit", json={"item_id": task["item_id"], "choice": "A"}).json()
        assert again["recorded"] is False
        bad = api.post("/api/submit", json={"item_id": "nope", "choice": "A"})
        assert bad.status_code == 400 and "not assigned" in bad.json()["detail"]
        assert api.post("/api/submit", json={"item_id": "x", "choice": "C"}).status_code == 422
        assert api.get("/api/status").json()["filled"] == 1
    assert rows(queue.path, "SELECT label, note FROM responses") == [("tie", "close")]


def test_fifty_concurrent_annotators_lose_and_duplicate_nothing(tmp_path):
    store = make_store(tmp_path / "store", routed=60, accepted=0)
    queue = Queue.for_dataset(store, "demo")
    sync_routed(queue, store, "demo", k=2)
    tokens = [queue.add_annotator(f"a{n:02d}") for n in range(50)]

    def work(token: str) -> int:
        submitted = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
            while (task := api.get("/api/next").json())["item_id"] is not None:
                res = api.post("/api/submit", json={"item_id": task["item_id"], "choice": "A"})
                res.raise_for_status()
                submitted += res.json()["recorded"]
        return submitted

    with live_server(queue) as url, ThreadPoolExecutor(50) as pool:
        submitted = sum(pool.map(work, tokens))
    assert submitted == 120  # every slot filled once: 60 items x k=2
    assert rows(queue.path, "SELECT COUNT(*) FROM responses") == [(120,)]
    assert rows(
        queue.path,
        "SELECT COUNT(*) FROM (SELECT item_id FROM responses GROUP BY item_id HAVING COUNT(*) = 2)",
    ) == [(60,)]
    assert rows(
        queue.path,
        "SELECT COUNT(*) FROM (SELECT 1 FROM responses GROUP BY item_id, annotator HAVING COUNT(*) > 1)",
    ) == [(0,)]
    assert rows(queue.path, "SELECT COUNT(*) FROM assignments WHERE state = 'open'") == [(0,)]


def test_a_running_server_picks_up_newly_routed_items(tmp_path):
    store = make_store(tmp_path / "store", routed=1, accepted=0)
    queue = Queue.for_dataset(store, "demo")
    sync_routed(queue, store, "demo", k=1)
    token = queue.add_annotator("ann")
    sync = lambda: sync_routed(queue, store, "demo", k=1)  # noqa: E731
    auth = {"Authorization": f"Bearer {token}"}
    with (
        live_server(queue, sync=sync, sync_every_s=0) as url,
        httpx.Client(base_url=url, headers=auth) as api,
    ):
        first = api.get("/api/next").json()
        api.post("/api/submit", json={"item_id": first["item_id"], "choice": "A"}).raise_for_status()
        assert api.get("/api/next").json()["item_id"] is None
        later = make_item(77, status="routed")
        store.write_version("demo", {"train": from_rows([])}, side={"routed": from_rows([later])})
        assert api.get("/api/next").json()["item_id"] == later["id"]


def raw_post(url: str, path: str, declared: int, headers: str = "", sent: bytes = b"{}") -> int:
    """POST with a declared Content-Length but only ``sent`` bytes: a server that tried to
    read the whole body would wait (and time out here) instead of answering."""
    import socket
    from urllib.parse import urlparse

    where = urlparse(url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n{headers}\r\n"
        )
        sock.sendall(head.encode() + sent)
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_big_bodies_are_refused_unread_and_anonymous_ones_before_their_size(tmp_path):
    store = make_store(tmp_path / "store", routed=2, accepted=1)
    queue = Queue.for_dataset(store, "demo")
    sync_routed(queue, store, "demo")
    token = queue.add_annotator("ann")
    with live_server(queue, max_body=4096) as url:
        assert raw_post(url, "/api/submit", 50_000_000) == 401  # who asks comes first
        assert raw_post(url, "/submit", 50_000_000) == 303  # a page form goes back to the login
        bearer = f"Authorization: Bearer {token}\r\n"
        assert raw_post(url, "/api/submit", 50_000_000, bearer) == 413
        assert raw_post(url, "/login", 50_000_000) == 413

        def chunks():
            for _ in range(10):
                yield b" " * 1024  # no Content-Length: counted as it arrives

        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            streamed = api.post("/api/submit", content=chunks(), headers={"content-type": "application/json"})
            assert streamed.status_code == 413
            assert "content-security-policy" in streamed.headers  # the guard's answers carry the headers
            task = api.get("/api/next").json()
            ok = api.post("/api/submit", json={"item_id": task["item_id"], "choice": "A"})
            assert ok.status_code == 200 and ok.json()["recorded"] is True


def test_secure_cookies_are_marked_secure(tmp_path):
    store = make_store(tmp_path / "store", routed=1, accepted=1)
    queue = Queue.for_dataset(store, "demo")
    with live_server(queue, secure_cookies=True) as url, httpx.Client(base_url=url) as client:
        assert "Secure" in client.get("/login").headers["set-cookie"]
    with live_server(queue) as url, httpx.Client(base_url=url) as client:
        assert "Secure" not in client.get("/login").headers["set-cookie"]
