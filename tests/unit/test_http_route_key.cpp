// routing/http_route_key: endpoints, tenants, rooms, and the head replayed to the backend.
#include <catch2/catch.hpp>
#include <string>

#include "http_support.hpp"
#include "routing/http_route_key.hpp"

using namespace xs::routing;

namespace {

HttpRequestHead head_of(const std::string& in) {
    HttpRequestReader r;
    r.feed(in);
    INFO(r.detail());
    REQUIRE(r.status() == HeadStatus::Done);
    return r.head();
}

HttpRequestHead get(const std::string& target) {
    return head_of("GET " + target + " HTTP/1.1\r\nHost: meet.example.com\r\n\r\n");
}

HttpRouteKey key_of(const std::string& target) {
    std::string why;
    auto k = http_route_key(get(target), &why);
    INFO(target << ": " << why);
    REQUIRE(k);
    return *k;
}

std::string error_of(const std::string& target) {
    std::string why;
    auto k = http_route_key(get(target), &why);
    INFO(target);
    REQUIRE_FALSE(k);
    CHECK_FALSE(why.empty());
    return why;
}

}  // namespace

TEST_CASE("http: endpoints and room keys", "[http]") {
    auto ws = key_of("/xmpp-websocket?room=MyRoom&previd=abc&token=eyJ");
    CHECK(ws.endpoint == HttpEndpoint::WebSocket);
    CHECK(ws.room == "myroom");
    CHECK(ws.tenant.empty());
    CHECK(ws.hash_key == "myroom");

    auto bosh = key_of("/http-bind?room=myroom");
    CHECK(bosh.endpoint == HttpEndpoint::Bosh);
    CHECK(bosh.hash_key == "myroom");

    auto tenant = key_of("/Tenant/xmpp-websocket?room=x");
    CHECK(tenant.endpoint == HttpEndpoint::WebSocket);
    CHECK(tenant.tenant == "tenant");
    CHECK(tenant.hash_key == "tenant/x");

    auto rewritten = key_of("/http-bind?prefix=tenant&room=x");
    CHECK(rewritten.endpoint == HttpEndpoint::Bosh);
    CHECK(rewritten.hash_key == "tenant/x");
    CHECK(key_of("/tenant/http-bind?prefix=TENANT&room=x").hash_key == "tenant/x");

    auto vnode = key_of("/xmpp-websocket?room=r&vnode=V1");
    CHECK(vnode.vnode == "v1");
    CHECK(vnode.hash_key == "r");

    CHECK(key_of("/xmpp-websocket").hash_key.empty());
    CHECK(key_of("/xmpp-websocket?token=a&foo").room.empty());
    for (const char* other : {"/conference-request/v1?room=r", "/", "/xmpp-websocket/", "/a/b/http-bind",
                              "//http-bind", "/XMPP-WEBSOCKET", "/http-bind2", "/tenant/other"}) {
        auto k = key_of(other);
        INFO(other);
        CHECK(k.endpoint == HttpEndpoint::Other);
        CHECK(k.tenant.empty());
    }
    CHECK(key_of("/conference-request/v1?room=r").room == "r");
    CHECK(to_string(HttpEndpoint::Bosh) == "bosh");
}

TEST_CASE("http: room values are percent-decoded, lower-cased and checked", "[http]") {
    CHECK(key_of("/xmpp-websocket?room=caf%C3%A9%20Room").room == "caf\xc3\xa9 room");
    CHECK(key_of("/xmpp-websocket?room=a+b").room == "a+b");
    CHECK(key_of("/xmpp-websocket?room=%41%2fB").room == "a/b");
    CHECK(key_of("/%54enant/xmpp-websocket?room=x").tenant == "tenant");
    CHECK(key_of("/xmpp-websocket?room=" + std::string(kMaxRoomBytes, 'r')).room.size() == kMaxRoomBytes);

    CHECK(error_of("/xmpp-websocket?room=" + std::string(kMaxRoomBytes + 1, 'r')).find("longer") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=a%0Ab").find("control") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=a%00b").find("control") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=a%7fb").find("control") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=a%zzb").find("percent") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=a%4").find("percent") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=").find("empty") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room").find("empty") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=a&room=b").find("twice") != std::string::npos);
    CHECK(error_of("/http-bind?prefix=a&prefix=a&room=b").find("twice") != std::string::npos);
    CHECK(error_of("/t1/http-bind?prefix=t2&room=b").find("differ") != std::string::npos);
    CHECK(error_of("/http-bind?prefix=a%2Fb&room=b").find("/") != std::string::npos);
    CHECK(error_of("/a%2Fb/http-bind?room=b").find("/") != std::string::npos);
    CHECK(error_of("/xmpp-websocket?room=r&vnode=%01").find("vnode") != std::string::npos);
}

TEST_CASE("http: percent_decode", "[http]") {
    CHECK(*percent_decode("a%20b%2F%2f") == "a b//");
    CHECK(*percent_decode("") == "");
    CHECK_FALSE(percent_decode("%"));
    CHECK_FALSE(percent_decode("%2"));
    CHECK_FALSE(percent_decode("%g0"));
}

TEST_CASE("http: the head replayed to the backend", "[http]") {
    const std::string in = xs::test::kChromeWs;
    const auto h = head_of(in);
    const std::string out = render_backend_head(h, "192.0.2.7", true);
    const std::string body_end = "\r\n\r\n";
    // The original bytes, then the two added fields.
    CHECK(out == in.substr(0, in.size() - 2) + "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n\r\n");
    // The result reads back to the same request.
    HttpRequestReader again;
    REQUIRE(again.feed(out) == HeadStatus::Done);
    CHECK(again.head().target == h.target);
    CHECK(again.head().head_bytes == out.size());

    const auto x = head_of("POST /http-bind?room=r HTTP/1.1\r\nHost:Meet.example.com\r\n"
                           "X-Forwarded-Proto: https\r\nX-Forwarded-For:  10.0.0.1 \r\n"
                           "x-forwarded-for: 10.0.0.2\r\nX-FORWARDED-PROTO: gopher\r\nContent-Length: 0\r\n\r\n");
    CHECK(render_backend_head(x, "2001:db8::1", false) ==
          "POST /http-bind?room=r HTTP/1.1\r\nHost:Meet.example.com\r\n"
          "X-Forwarded-For:  10.0.0.1 \r\nx-forwarded-for: 10.0.0.2, 2001:db8::1\r\n"
          "Content-Length: 0\r\nX-Forwarded-Proto: http\r\n\r\n");
    const auto empty = head_of("GET / HTTP/1.0\r\nX-Forwarded-For:\r\n\r\n");
    CHECK(render_backend_head(empty, "1.2.3.4\r\nX: y", false) ==
          "GET / HTTP/1.0\r\nX-Forwarded-For:1.2.3.4X:y\r\nX-Forwarded-Proto: http\r\n\r\n");
    // Skipped leading CRLFs are not replayed.
    const auto lead = head_of("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(render_backend_head(lead, "1.1.1.1", true).rfind("GET / HTTP/1.1\r\nHost: a\r\n", 0) == 0);
}
