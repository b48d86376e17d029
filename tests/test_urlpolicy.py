"""The URL policy (issue 9): URLs from the web never reach the user's own machine or network
unless allowed_hosts says so. First the policy itself (no network: literal addresses, and
``localhost``, which resolves locally), then the HTTP fetcher against real local servers: the
test web, allowed by its port, and "protected" servers on other loopback addresses and ports
that log every connection they accept and must end up with an empty log."""

from __future__ import annotations

import asyncio
import re
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from localsearch.config import Config
from localsearch.errors import ConfigError
from localsearch.plugins import pm
from localsearch.types import FetchStatus, Page

# -- the policy ---------------------------------------------------------------------------

REFUSED = [  # (URL, what the reason must say)
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.8.9.10:8080/x", "127.8.9.10 is a loopback address"),
    ("http://0x7f000001/", "0x7f000001 is 127.0.0.1, a loopback address"),
    ("http://2130706433/", "2130706433 is 127.0.0.1, a loopback address"),
    ("http://0177.0.0.1/", "0177.0.0.1 is 127.0.0.1, a loopback address"),
    ("http://127.1/", "127.1 is 127.0.0.1, a loopback address"),
    ("http://0x7f.1/", "0x7f.1 is 127.0.0.1, a loopback address"),
    ("http://127.0.0.1./", "is 127.0.0.1, a loopback address"),
    ("http://[::1]/", "[::1] is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "[::ffff:127.0.0.1] is 127.0.0.1, a loopback address"),
    ("http://[::ffff:7f00:1]:8000/", "is 127.0.0.1, a loopback address"),
    ("http://[::127.0.0.1]/", "is 127.0.0.1, a loopback address"),  # IPv4-compatible
    ("http://[2002:7f00:1::]/", "is 127.0.0.1, a loopback address"),  # 6to4
    ("http://[64:ff9b::7f00:1]/", "is 127.0.0.1, a loopback address"),  # NAT64
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/", "is 169.254.169.254, a cloud metadata address"),
    ("http://2852039166/", "is 169.254.169.254, a cloud metadata address"),
    ("http://100.100.100.200/", "a cloud metadata address"),
    ("http://169.254.1.1/", "a link-local address"),
    ("http://[fe80::1%25eth0]/", "a link-local address"),
    ("http://10.1.2.3/", "10.1.2.3 is a private address"),
    ("http://172.16.5.4/", "a private address"),
    ("http://192.168.1.1/", "a private address"),
    ("http://[fd12:3456::1]/", "a private address"),
    ("http://100.64.0.1/", "a shared (carrier-grade NAT) address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://[ff02::1]/", "a multicast address"),
    ("http://0.0.0.0:8000/", "0.0.0.0 is an unspecified address"),
    ("http://0/", "is 0.0.0.0, an unspecified address"),
    ("http://[::]/", "an unspecified address"),
    ("http://240.0.0.1/", "a reserved address"),
    ("http://255.255.255.255/", "a reserved address"),
    ("http://192.0.2.7/", "a reserved address"),
    ("http://localhost/", "localhost is a loopback name"),
    ("http://LocalHost:631/", "localhost is a loopback name"),
    ("http://printer.localhost/", "a loopback name"),
    ("http://nas.local/", "nas.local is a local network name"),
    ("http://metadata.google.internal/computeMetadata/v1/", "a local network name"),
    ("http://router/", "router is a local network name"),
    ("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/", "localhost is a loopback name"),  # fullwidth
    ("http://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/", "is 127.0.0.1, a loopback address"),
]


@pytest.mark.parametrize("url, said", REFUSED)
def test_local_and_special_addresses_are_refused_in_every_form(url, said):
    from localsearch.urlpolicy import UrlPolicy

    policy = UrlPolicy()
    reason = policy.check_syntax(url)
    assert said in reason
    assert reason.endswith("(allow it with the allowed_hosts setting)")
    assert "\n" not in reason
    assert policy.check(url) == reason  # no DNS needed to refuse these


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/", "https://8.8.8.8:8443/x", "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/", "http://[64:ff9b::808:808]/", "http://[2002:808:808::1]/",
    "https://example.org/page?q=1", "HTTPS://Example.ORG./",
])
def test_public_addresses_and_names_pass(url):
    from localsearch.urlpolicy import UrlPolicy

    assert UrlPolicy().check_syntax(url) == ""


def test_public_literals_need_no_dns(monkeypatch):
    from localsearch.urlpolicy import UrlPolicy

    def no_dns(*args):
        raise AssertionError("resolved an IP literal")

    monkeypatch.setattr(UrlPolicy, "resolve", staticmethod(no_dns))
    assert UrlPolicy().check("http://93.184.216.34/") == ""
    assert UrlPolicy().check("http://127.0.0.1/") != ""


@pytest.mark.parametrize("url, said", [
    ("ftp://example.org/file", "ftp: URLs are not fetched (only http and https)"),
    ("gopher://127.0.0.1:70/", "gopher: URLs are not fetched"),
    ("javascript:alert(1)", "javascript: URLs are not fetched"),
    ("data:text/html,<p>hi</p>", "data: URLs are not fetched"),
    ("file:///etc/passwd", "file: URLs and local paths are read only when you name them"),
    ("/etc/passwd", "file: URLs and local paths are read only when you name them"),
    ("//example.org/x", "has no scheme"),
    ("http:///x", "has no host"),
    ("http://example.org:99999/", "port"),
    ("http://example.org\\@127.0.0.1/", "malformed"),
    ("http://foo.123/", "not a valid IPv4 address"),
    ("http://1.2.3.4.5/", "not a valid IPv4 address"),
    ("http://09.1.1.1/", "not a valid IPv4 address"),  # 09 is no octal number
    ("", "not a URL"),
])
def test_only_http_urls_with_a_sound_host(url, said):
    from localsearch.urlpolicy import UrlPolicy

    assert said in UrlPolicy().check_syntax(url)
    assert said in UrlPolicy().check(url)


def test_files_only_when_the_user_named_them(tmp_path):
    from localsearch.urlpolicy import UrlPolicy

    named = UrlPolicy(allow_files=True)
    assert named.check((tmp_path / "notes.html").as_uri()) == ""
    assert named.check(str(tmp_path / "notes.html")) == ""
    assert named.check("file://localhost/tmp/notes.html") == ""
    assert "another host" in named.check("file://fileserver.example/share/notes.html")
    assert "127.0.0.1 is a loopback address" in named.check("http://127.0.0.1/")  # files only
    assert "name them" in UrlPolicy().check((tmp_path / "notes.html").as_uri())


def test_allowed_hosts_by_ip_port_cidr_and_name():
    from localsearch.urlpolicy import UrlPolicy

    policy = UrlPolicy(["127.0.0.1:8080", "10.0.0.0/8", "intranet.example", "*.corp.example:8443",
                        "[::1]:9000", "fd00::/8", "192.168.1.0/24:5000"])
    for url in ["http://127.0.0.1:8080/", "http://[::ffff:127.0.0.1]:8080/", "http://0x7f000001:8080/",
                "http://10.200.0.1/", "https://10.0.0.1:444/", "http://intranet.example/",
                "https://wiki.corp.example:8443/", "http://[::1]:9000/", "http://[fd12::1]/",
                "http://192.168.1.20:5000/"]:
        assert policy.check_syntax(url) == "", url
    assert policy.check_syntax("http://127.0.0.1:8081/") == \
        "127.0.0.1 is a loopback address (allowed_hosts allows it on port 8080 only)"
    assert policy.check_syntax("http://127.0.0.2:8080/") == \
        "127.0.0.2 is a loopback address (allow it with the allowed_hosts setting)"
    assert "allows it on port 9000 only" in policy.check_syntax("http://[::1]:9001/")
    assert "a private address" in policy.check_syntax("http://172.16.0.1/")
    assert "allows it on port 5000 only" in policy.check_syntax("http://192.168.1.20/")
    assert "a private address" in policy.check_syntax("http://192.168.2.20:5000/")
    assert "a cloud metadata address" in policy.check_syntax("http://169.254.169.254/")
    # A name allowed by name may resolve anywhere; other names are judged by their addresses.
    assert policy.check_addresses("intranet.example", 80, ["10.1.1.1", "192.168.9.9"]) == ""
    assert policy.check_addresses("wiki.corp.example", 8443, ["172.16.0.9"]) == ""
    assert policy.check_addresses("wiki.corp.example", 443, ["172.16.0.9"]) == \
        "wiki.corp.example resolves to 172.16.0.9, a private address (allow it with the allowed_hosts setting)"
    assert policy.check_addresses("intranet2.example", 80, ["10.1.1.1"]) == ""  # in 10.0.0.0/8


def test_a_name_is_refused_if_any_address_it_resolves_to_is(monkeypatch):
    from localsearch.urlpolicy import UrlPolicy

    policy = UrlPolicy()
    assert policy.check_addresses("rebind.example", 80, ["93.184.216.34", "127.0.0.1"]) == \
        "rebind.example resolves to 127.0.0.1, a loopback address (allow it with the allowed_hosts setting)"
    assert "that is 127.0.0.1, a loopback address" in \
        policy.check_addresses("mapped.example", 80, ["::ffff:127.0.0.1"])
    assert policy.check_addresses("example.org", 443, ["93.184.216.34", "2606:2800:220:1::1"]) == ""
    # check() asks DNS: a public-looking name that resolves to the metadata service is refused.
    monkeypatch.setattr(UrlPolicy, "resolve", staticmethod(lambda host, port: ["169.254.169.254"]))
    assert policy.check_syntax("http://innocent.example/") == ""
    assert policy.check("http://innocent.example/") == ("innocent.example resolves to 169.254.169.254, a cloud "
                                                        "metadata address (allow it with the allowed_hosts setting)")

    def unresolvable(host, port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(UrlPolicy, "resolve", staticmethod(unresolvable))
    assert policy.check("http://nowhere.invalid/") == ""  # not refused: the fetch fails by itself


def test_localhost_is_judged_by_what_it_resolves_to():
    from localsearch.urlpolicy import UrlPolicy

    assert "localhost" in UrlPolicy().check("http://localhost:8080/")
    policy = UrlPolicy(["127.0.0.1:8080", "[::1]:8080"])  # addresses allowed: DNS decides
    assert policy.check("http://localhost:8080/") == ""
    reason = policy.check("http://localhost:8081/")
    assert reason.startswith("localhost resolves to ") and "a loopback address" in reason
    assert "allows it on port 8080 only" in reason
    assert UrlPolicy(["localhost"]).check("http://localhost:8081/") == ""  # allowed by name


def test_allowed_hosts_comes_from_the_config_and_defaults_to_nothing(home, monkeypatch):
    from localsearch.urlpolicy import UrlPolicy

    monkeypatch.delenv("LOCALSEARCH_ALLOWED_HOSTS", raising=False)  # the test web's, if home set it
    assert Config.load().allowed_hosts == []
    assert "loopback" in UrlPolicy.from_config(Config.load()).check_syntax("http://127.0.0.1/")
    monkeypatch.setenv("LOCALSEARCH_ALLOWED_HOSTS", "127.0.0.1, 10.0.0.0/8")
    policy = UrlPolicy.from_config(Config.load())
    assert policy.check_syntax("http://127.0.0.1:1234/") == ""
    assert policy.check_syntax("http://10.9.8.7/") == ""
    assert "private" in policy.check_syntax("http://192.168.0.1/")
    assert "name them" in policy.check_syntax("file:///tmp/x.html")
    assert UrlPolicy.from_config(Config.load(), allow_files=True).check_syntax("file:///tmp/x.html") == ""
    monkeypatch.setenv("LOCALSEARCH_ALLOWED_HOSTS", "10.0.0.0/33")
    with pytest.raises(ConfigError, match="allowed_hosts.*10.0.0.0/33"):
        UrlPolicy.from_config(Config.load())


@pytest.mark.parametrize("entry", ["a b", "10.0.0.0/33", "[::1", "host:port", "host:0", ":80", "1.2.3.4.5"])
def test_bad_allowed_hosts_entries_are_refused(entry):
    from localsearch.urlpolicy import UrlPolicy

    with pytest.raises(ValueError, match="allowed_hosts|not|port|missing|no host"):
        UrlPolicy([entry])


# -- the fetcher --------------------------------------------------------------------------

class Protected:
    """A web server on the user's own machine that pages must never reach: it answers every GET
    with a secret and logs every connection it accepts, before a byte is read."""

    def __init__(self, host: str):
        self.connections: list = []
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                owner.requests.append(self.path)
                body = b"<html><head><title>Router admin</title></head><body><p>SECRET admin token: " \
                       b"hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 " \
                       b"hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 hunter2 hunter2.</p></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def server_bind(self):
                socketserver.TCPServer.server_bind(self)  # no getfqdn() (a DNS lookup)
                self.server_name, self.server_port = self.server_address[:2]

            def get_request(self):
                connection, address = super().get_request()
                owner.connections.append(address)
                return connection, address

        self.server = Server((host, 0), Handler)
        self.host, self.port = host, self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def protected():
    """Two protected servers: another port on 127.0.0.1, and 127.0.0.2 (Linux routes 127/8 to lo)."""
    servers = [Protected("127.0.0.1"), Protected("127.0.0.2")]
    yield servers
    for server in servers:
        server.close()


@pytest.fixture
def config(home, web, protected):
    for server in protected:
        server.connections.clear()
        server.requests.clear()
    yield Config.load({"fetch_timeout": 3.0, "max_redirects": 4, "allowed_hosts": [f"{web.host}:{web.port}"]})
    for server in protected:  # whatever a test did, nothing reached a protected server
        assert server.connections == [] and server.requests == [], server.url


def fetch(url, config) -> Page:
    result = pm.hook.fetch_page(url=url, config=config)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def via_open_redirect(web, target: str) -> str:
    return f"{web.url}/redirect-to?url={quote(target, safe='')}"


def test_the_allowed_test_web_is_fetched(web, config):
    page = fetch(web.url + "/articles/harrowmere-lighthouse", config)
    assert page.ok and "Harrowmere" in page.html
    page = fetch(via_open_redirect(web, "/articles/kestrel-valley-comet"), config)  # same host: fine
    assert page.ok and page.final_url == web.url + "/articles/kestrel-valley-comet"


def test_a_search_result_on_the_users_machine_is_blocked(web, config, protected):
    for server in protected:
        page = fetch(server.url + "/admin", config)
        assert page.status == FetchStatus.BLOCKED, page
        assert page.reason == f"{server.host} is a loopback address (" + (
            f"allowed_hosts allows it on port {web.port} only)" if server.host == web.host
            else "allow it with the allowed_hosts setting)")
        assert page.html == ""


def test_a_redirect_to_the_users_machine_is_blocked(web, config, protected):
    for server in protected:
        for status in ("301", "302", "307"):
            start = via_open_redirect(web, server.url + "/admin") + "&status=" + status
            page = fetch(start, config)
            assert page.status == FetchStatus.BLOCKED, page
            assert page.final_url == server.url + "/admin"
            assert page.reason.startswith(f"redirected to {server.url}/admin: {server.host} is a loopback address")
            assert page.html == ""


@pytest.mark.parametrize("form", ["http://0x7f000001:{port}/", "http://2130706433:{port}/", "http://0177.0.0.1:{port}/",
                                  "http://127.1:{port}/", "http://[::ffff:127.0.0.1]:{port}/",
                                  "http://[::ffff:7f00:2]:{port}/", "http://[::1]:{port}/",
                                  "http://0.0.0.0:{port}/", "http://169.254.169.254/latest/meta-data/",
                                  "http://[fd00:ec2::254]/latest/meta-data/", "http://localhost:{port}/"])
def test_numeric_ipv6_and_metadata_forms_are_blocked_directly_and_after_a_redirect(web, config, protected, form):
    for server in protected:
        url = form.format(port=server.port)
        direct = fetch(url, config)
        redirected = fetch(via_open_redirect(web, url), config)
        for page in (direct, redirected):
            assert page.status == FetchStatus.BLOCKED, page
            assert "allowed_hosts" in page.reason and "\n" not in page.reason
        assert redirected.reason.startswith(f"redirected to {url}: ")


def test_localhost_is_checked_where_the_connection_is_made(web, config, protected):
    """allowed_hosts names an address, so a name is judged by what it resolves to: the check
    before the request lets localhost:<port> by, and the connection refuses it."""
    from localsearch.urlpolicy import UrlPolicy

    config = config.replace(allowed_hosts=config.allowed_hosts + [f"[::1]:{web.port}"])  # if localhost is ::1 too
    server = protected[0]
    url = f"http://localhost:{server.port}/admin"
    assert UrlPolicy.from_config(config).check_syntax(url) == ""
    page = fetch(via_open_redirect(web, url), config)
    assert page.status == FetchStatus.BLOCKED, page
    assert re.search(r"^redirected to \S+: localhost resolves to (127\.0\.0\.1|::1), a loopback address", page.reason)
    assert f"allows it on port {web.port} only" in page.reason
    # ...while localhost on the allowed port is fetched: the name resolved, the address passed.
    page = fetch(f"http://localhost:{web.port}/articles/harrowmere-lighthouse", config)
    assert page.ok, page.reason


def test_the_fetcher_checks_connections_with_this_httpx():
    """The connection check needs httpx's transport to take our network backend; if an httpx
    upgrade moves its connection pool, the fetcher falls back to DNS checks before each hop,
    open to DNS rebinding: fail here rather than degrade quietly."""
    from localsearch.urlpolicy import UrlPolicy
    from localsearch_plugins import http_fetch

    backend, transport = http_fetch._guarded_classes()
    assert transport(UrlPolicy()) is not None


def test_the_connection_check_refuses_what_dns_says_at_connect_time(web, config, protected, monkeypatch):
    """DNS rebinding: the name looked public when it was checked, and resolves to the user's
    machine when the connection is made; the connection goes nowhere."""
    import anyio

    server = protected[1]
    real = anyio.getaddrinfo

    async def rebinding(host, port, **kwargs):
        if host == "rebind.example":
            host = server.host  # what a rebinding DNS server answers the second time
        return await real(host, port, **kwargs)

    monkeypatch.setattr(anyio, "getaddrinfo", rebinding)
    page = fetch(f"http://rebind.example:{server.port}/admin", config)
    assert page.status == FetchStatus.BLOCKED, page
    assert page.reason.startswith(f"rebind.example resolves to {server.host}, a loopback address")


@pytest.mark.parametrize("target", ["file:///etc/passwd", "file:///etc/hostname", "ftp://127.0.0.1/",
                                    "gopher://127.0.0.2:70/", "data:text/html,<p>hi</p>"])
def test_a_redirect_never_leads_out_of_http(web, config, target):
    page = fetch(via_open_redirect(web, target), config)
    assert page.status == FetchStatus.BLOCKED, page
    assert page.reason.startswith(f"redirected to {target}: ")
    assert "file: URLs" in page.reason or "URLs are not fetched (only http and https)" in page.reason
    assert page.html == ""


def test_proxies_from_the_environment_are_not_used(web, config, protected, monkeypatch):
    """A proxy would resolve and connect past every check: page fetches go direct."""
    for key in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(key, protected[1].url)
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    page = fetch(web.url + "/articles/harrowmere-lighthouse", config)
    assert page.ok and "Harrowmere" in page.html and "SECRET" not in page.html


def test_an_unresolvable_name_is_an_error_not_blocked(config, monkeypatch):
    import anyio

    async def nxdomain(host, port, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(anyio, "getaddrinfo", nxdomain)
    page = fetch("http://nowhere.invalid/", config)
    assert page.status == FetchStatus.ERROR
    assert "cannot resolve nowhere.invalid" in page.reason


def test_a_name_with_several_addresses_connects_to_one_that_answers(web, config, protected, monkeypatch):
    """The connection goes to the checked addresses themselves, the next one tried when one
    fails; one refused address refuses the name."""
    import anyio

    answers = {"several.example": ["127.0.0.3", web.host],  # nothing listens on 127.0.0.3
               "mixed.example": [web.host, protected[1].host]}

    async def fake_dns(host, port, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers[host]]

    monkeypatch.setattr(anyio, "getaddrinfo", fake_dns)
    config = config.replace(allowed_hosts=[f"127.0.0.0/8:{web.port}"])
    page = fetch(f"http://several.example:{web.port}/articles/harrowmere-lighthouse", config)
    assert page.ok and "Harrowmere" in page.html
    page = fetch(f"http://mixed.example:{protected[1].port}/admin", config)
    assert page.status == FetchStatus.BLOCKED
    assert page.reason.startswith("mixed.example resolves to 127.0.0.1, a loopback address")


def test_without_the_connection_check_each_hop_is_checked_with_dns(web, config, protected, monkeypatch):
    """The fallback for an httpx whose transport cannot take our network backend."""
    from localsearch_plugins import http_fetch

    monkeypatch.setattr(http_fetch, "_guarded_classes", lambda: (None, lambda policy: None))
    page = fetch(via_open_redirect(web, f"http://localhost:{protected[0].port}/admin"), config)
    assert page.status == FetchStatus.BLOCKED
    assert re.search(r"localhost resolves to (127\.0\.0\.1|::1), a loopback address", page.reason)
    assert fetch(web.url + "/articles/harrowmere-lighthouse", config).ok


# -- the pipeline ---------------------------------------------------------------------------

def test_search_results_pointing_inward_are_blocked_and_the_rest_answers(make_pipeline, web, config, protected):
    """An engine's results aimed at the user's machine and network (other loopback ports, a
    second loopback address, numeric and IPv6 forms, cloud metadata, file:, and a page that
    redirects inward) are listed as blocked sources; the question is answered from the rest,
    and the protected servers see no connection (checked by the ``config`` fixture)."""
    from localsearch import hookimpl
    from localsearch.pipeline import fold_events
    from localsearch.types import SearchResult

    inward = [protected[0].url + "/admin", protected[1].url + "/admin",
              f"http://0x7f000001:{protected[0].port}/", f"http://[::ffff:127.0.0.1]:{protected[0].port}/",
              f"http://2130706433:{protected[0].port}/", "http://169.254.169.254/latest/meta-data/",
              f"http://localhost:{protected[0].port}/", "file:///etc/passwd",
              via_open_redirect(web, protected[0].url + "/admin")]
    urls = inward + [web.url + "/articles/harrowmere-lighthouse"]

    class Inward:
        @hookimpl
        def register_search_engines(self, register):
            class Engine:
                name = "inward"

                def search(self, query, limit, context):
                    return [SearchResult(url=url) for url in urls]

            register(Engine())

    pm.register(Inward(), name="inward")
    try:
        result = fold_events(make_pipeline(engines=["inward"], max_pages=len(urls), results_per_engine=20)
                             .ask("When was the Harrowmere lighthouse first lit?"))
    finally:
        pm.unregister(name="inward")
    status = {s["url"]: (s["status"], s["reason"]) for s in result["sources"]}
    assert [status[url][0] for url in inward] == ["blocked"] * len(inward), status
    assert "loopback" in status[inward[0]][1] and "metadata" in status[inward[5]][1]
    assert status[urls[-1]][0] == "ok" and result["citations"]
    assert all(c["url"] == urls[-1] for c in result["citations"])
