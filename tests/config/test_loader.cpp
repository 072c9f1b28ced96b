#include <catch2/catch.hpp>

#include "config/loader.hpp"

using namespace xs::config;

namespace {

const char* kValid = R"([proxy]
workers = 2
header_timeout = "3s"
max_header_bytes = 2048
[[listener]]
name = "c2s"
bind = "127.0.0.1:0"
[[backend]]
name = "main"
address = "127.0.0.1:15222"
[[backend]]
name = "brewery"
address = "[::1]:25222"
[[route]]
name = "client"
domains = ["meet.example.com"]
backends = ["main"]
[[route]]
domains = ["auth.jvb.example.com"]
backends = ["brewery", "main"]
[[route]]
domains = ["*"]
backends = ["main", "brewery"]
balance = "hash"
)";

std::vector<std::string> errors_of(const char* text) {
    auto r = load_config_string(text, "t.toml");
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.to_string());
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& needle) {
    for (const auto& s : v)
        if (s.find(needle) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("a valid file loads into plain structs", "[config][loader]") {
    auto r = load_config_string(kValid, "t.toml");
    REQUIRE(r.errors.empty());
    const Config& c = *r.config;
    CHECK(c.proxy.workers == 2);
    CHECK(c.proxy.header_timeout == std::chrono::milliseconds(3000));
    CHECK(c.proxy.max_header_bytes == 2048);
    CHECK(c.proxy.connect_timeout == std::chrono::milliseconds(5000));  // default
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].namespaces.size() == 2);
    REQUIRE(c.backends.size() == 2);
    CHECK(c.backends[1].address.to_string() == "[::1]:25222");
    auto d = c.routes->lookup("c2s", "auth.jvb.example.com");
    REQUIRE(d);
    CHECK(d->candidates == std::vector<std::size_t>{1, 0});
}

TEST_CASE("TOML syntax errors carry their position", "[config][loader]") {
    auto e = errors_of("[proxy]\nworkers = = 2\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].rfind("t.toml:2:", 0) == 0);
}

TEST_CASE("every problem is reported, each at FILE:LINE:COL", "[config][loader]") {
    const char* text = R"([proxy]
header_timeout = "10"
wrokers = 2
[[listener]]
name = "c2s"
bind = "127.0.0.1"
[[backend]]
name = "main"
address = "127.0.0.1:15222"
[[route]]
domains = ["meet.example.com"]
backends = ["main", "nosuch"]
[[route]]
domains = ["meet.example.com"]
backends = ["main"]
balance = "random"
)";
    auto e = errors_of(text);
    INFO(Catch::Detail::stringify(e));
    CHECK(has(e, "t.toml:2:18: 'header_timeout'"));
    CHECK(has(e, "t.toml:3:1: unknown key 'wrokers'"));
    CHECK(has(e, "t.toml:6:8: expected \"HOST:PORT\""));
    CHECK(has(e, "t.toml:12:21:"));   // the unknown backend, at the array item
    CHECK(has(e, "nosuch"));
    CHECK(has(e, "t.toml:14:12:"));   // the duplicate domain
    CHECK(has(e, "t.toml:16:11: 'balance'"));
    CHECK(e.size() >= 6);
    // sorted by position
    auto r = load_config_string(text, "t.toml");
    for (std::size_t i = 1; i < r.errors.size(); ++i) {
        const auto &a = r.errors[i - 1], &b = r.errors[i];
        CHECK((a.line < b.line || (a.line == b.line && a.column <= b.column)));
    }
}

TEST_CASE("missing sections and duplicate names are errors", "[config][loader]") {
    auto e = errors_of("[proxy]\nworkers = 1\n");
    CHECK(has(e, "no [[listener]] configured"));
    CHECK(has(e, "no [[backend]] configured"));
    CHECK(has(e, "no [[route]] configured"));
    auto d = errors_of(R"([[listener]]
name = "a"
bind = "127.0.0.1:1"
[[listener]]
name = "a"
bind = "127.0.0.1:2"
[[backend]]
name = "b"
address = "127.0.0.1:3"
[[route]]
domains = ["*"]
backends = ["b"]
listeners = ["a", "zz"]
)");
    CHECK(has(d, "t.toml:5:8: duplicate listener name 'a'"));
    CHECK(has(d, "t.toml:13:19:"));
}

TEST_CASE("a terminating listener needs certificates; certificate problems carry positions",
          "[config][loader]") {
    auto e = errors_of(R"([[listener]]
name = "a"
bind = "127.0.0.1:1"
tls = "terminate"
[[backend]]
name = "b"
address = "127.0.0.1:3"
proxy_protocol = "v2"
[[route]]
domains = ["*"]
backends = ["b"]
)");
    CHECK(has(e, "t.toml:4:7: tls = \"terminate\" needs at least one [[certificate]]"));
    CHECK_FALSE(has(e, "proxy_protocol"));
    auto c = errors_of(R"([[listener]]
name = "a"
bind = "127.0.0.1:1"
tls = "terminate"
[[backend]]
name = "b"
address = "127.0.0.1:3"
[[route]]
domains = ["*"]
backends = ["b"]
[[certificate]]
cert = "/nonexistent/meet.crt"
key = "/nonexistent/meet.key"
domains = ["meet.example.com"]
)");
    CHECK(has(c, "t.toml:12:8:"));  // the unreadable cert, at its value
    CHECK(has(c, "t.toml:13:7:"));  // the unreadable key
}

TEST_CASE("a missing file is one clear error", "[config][loader]") {
    auto r = load_config_file("/nonexistent/xs.toml");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string().rfind("/nonexistent/xs.toml:1:1: cannot open file", 0) == 0);
}

TEST_CASE("http listeners: protocol and hash_key load; TLS on them is an error with its position",
          "[config][loader]") {
    const char* ok = R"([[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
[[backend]]
name = "s1"
address = "127.0.0.1:3"
[[route]]
domains = ["meet.example.com"]
backends = ["s1"]
balance = "hash"
hash_key = "room"
)";
    auto r = xs::config::load_config_string(ok, "t.toml");
    REQUIRE(r.errors.empty());
    CHECK(r.config->listeners[0].protocol == xs::config::Protocol::Http);
    auto d = r.config->routes->lookup("web", "meet.example.com", "r1");
    REQUIRE(d);
    auto e = errors_of(R"([[listener]]
name = "web"
bind = "127.0.0.1:0"
protocol = "http"
direct_tls = true
[[backend]]
name = "s1"
address = "127.0.0.1:3"
[[route]]
domains = ["*"]
backends = ["s1"]
hash_key = "rooms"
)");
    CHECK(has(e, "t.toml:5:14: direct_tls is for XMPP listeners"));
    CHECK(has(e, "t.toml:12:12:"));
}
