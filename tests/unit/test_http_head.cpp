// routing/http_head: the HTTP/1.1 request head reader.
#include <http_parser.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "http_support.hpp"
#include "routing/http_head.hpp"

using namespace xs::routing;
using xs::test::for_each_split;
using xs::test::request_outcome;

namespace {

HttpRequestReader read(std::string_view in, std::size_t max_head = 16384, std::size_t max_target = 8192) {
    HttpRequestReader r(max_head, max_target);
    r.feed(in);
    return r;
}

void require_split_invariant(const std::string& in) {
    for_each_split(
        in, [](const std::vector<std::string_view>& p) { return request_outcome(p); },
        [](const std::string& whole, const std::string& split) { REQUIRE(split == whole); });
}

int reject_status(std::string_view in) {
    auto r = read(in);
    INFO(r.detail());
    REQUIRE(r.status() == HeadStatus::Reject);
    return r.reject_status();
}

// libhttp-parser as an oracle on accepted requests: same method, URL, Content-Length, upgrade.
struct Oracle {
    std::string url;
    static int on_url(http_parser* p, const char* at, std::size_t n) {
        static_cast<Oracle*>(p->data)->url.append(at, n);
        return 0;
    }
    static int on_headers(http_parser* p) {
        http_parser_pause(p, 1);
        return 0;
    }
};

}  // namespace

TEST_CASE("http: a Chrome WebSocket upgrade, in every split", "[http]") {
    const std::string& in = xs::test::kChromeWs;
    auto r = read(in + "\x81\x85rest");
    REQUIRE(r.status() == HeadStatus::Done);
    const auto& h = r.head();
    CHECK(h.method == "GET");
    CHECK(h.target == "/xmpp-websocket?room=myroom");
    CHECK(h.path == "/xmpp-websocket");
    CHECK(h.query == "room=myroom");
    CHECK(h.version_minor == 1);
    CHECK(h.host == "meet.example.com");
    CHECK(h.host_port.empty());
    CHECK(h.conn_upgrade);
    CHECK_FALSE(h.conn_close);
    CHECK(h.upgrade == "websocket");
    CHECK(h.websocket_upgrade());
    CHECK(h.ws_key == "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(h.ws_version == "13");
    CHECK(h.ws_protocols == std::vector<std::string>{"xmpp"});
    CHECK_FALSE(h.has_content_length);
    CHECK(h.keep_alive);
    CHECK(h.head_bytes == in.size());
    REQUIRE(h.headers.size() == 13);
    CHECK(h.headers[0].name == "Host");
    CHECK(h.headers[12].raw == "Sec-WebSocket-Protocol: xmpp");
    CHECK(*h.field("user-agent") == h.headers[4].value);
    CHECK(h.field("x-missing") == nullptr);
    require_split_invariant(in);

    // The oracle agrees.
    Oracle o;
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &o;
    http_parser_settings s;
    std::memset(&s, 0, sizeof s);
    s.on_url = Oracle::on_url;
    s.on_headers_complete = Oracle::on_headers;
    http_parser_execute(&p, &s, in.data(), in.size());
    CHECK(HTTP_PARSER_ERRNO(&p) == HPE_PAUSED);
    CHECK(o.url == h.target);
    CHECK(p.upgrade == 1);
    CHECK(std::string(http_method_str(static_cast<http_method>(p.method))) == h.method);
}

TEST_CASE("http: a strophe.js BOSH POST keeps its body after head_bytes", "[http]") {
    const std::string in = xs::test::strophe_post();
    auto r = read(in);
    REQUIRE(r.status() == HeadStatus::Done);
    const auto& h = r.head();
    CHECK(h.method == "POST");
    CHECK(h.path == "/http-bind");
    CHECK(h.has_content_length);
    CHECK(h.content_length == xs::test::kStropheBody.size());
    CHECK(in.substr(h.head_bytes) == xs::test::kStropheBody);
    CHECK(h.keep_alive);
    CHECK(h.conn_keep_alive);
    CHECK_FALSE(h.websocket_upgrade());
    require_split_invariant(in);
}

TEST_CASE("http: tenant paths and nginx-rewritten queries parse in every split", "[http]") {
    for (std::string target : {"/tenant/xmpp-websocket?room=x", "/http-bind?prefix=tenant&room=x"}) {
        const std::string in = "GET " + target + " HTTP/1.1\r\nHost: Meet.Example.COM:8443\r\n\r\n";
        auto r = read(in);
        REQUIRE(r.status() == HeadStatus::Done);
        CHECK(r.head().target == target);
        CHECK(r.head().host == "meet.example.com");
        CHECK(r.head().host_port == "8443");
        require_split_invariant(in);
    }
}

TEST_CASE("http: keep-alive defaults by version", "[http]") {
    CHECK(read("GET / HTTP/1.1\r\nHost: a\r\n\r\n").head().keep_alive);
    CHECK_FALSE(read("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").head().keep_alive);
    CHECK_FALSE(read("GET / HTTP/1.0\r\n\r\n").head().keep_alive);
    auto r = read("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    REQUIRE(r.status() == HeadStatus::Done);
    CHECK(r.head().keep_alive);
    CHECK(r.head().host.empty());
    CHECK_FALSE(read("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").head().keep_alive);
}

TEST_CASE("http: field values are trimmed, raw lines kept, leading CRLF skipped", "[http]") {
    auto r = read("\r\nGET /x HTTP/1.1\r\nHost:a\r\nX-A: \t v  1 \t\r\nX-B:\r\n\r\n");
    REQUIRE(r.status() == HeadStatus::Done);
    const auto& h = r.head();
    CHECK(h.leading_empty_lines == 1);
    REQUIRE(h.headers.size() == 3);
    CHECK(h.headers[1].value == "v  1");
    CHECK(h.headers[1].raw == "X-A: \t v  1 \t");
    CHECK(h.headers[2].value.empty());
    CHECK(h.host == "a");
    auto p = read("GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Protocol: xmpp, ,chat\r\n"
                  "Sec-WebSocket-Protocol: x2\r\nConnection: keep-alive, Upgrade\r\n\r\n");
    REQUIRE(p.status() == HeadStatus::Done);
    CHECK(p.head().ws_protocols == std::vector<std::string>{"xmpp", "chat", "x2"});
    CHECK(p.head().connection == std::vector<std::string>{"keep-alive", "upgrade"});
    CHECK(p.head().conn_upgrade);
}

TEST_CASE("http: NeedMore until the empty line", "[http]") {
    HttpRequestReader r;
    CHECK(r.feed("GET / HTTP/1.1\r\nHost: a\r\n") == HeadStatus::NeedMore);
    CHECK(r.feed("\r") == HeadStatus::NeedMore);
    CHECK(r.feed("\nBODY") == HeadStatus::Done);
    CHECK(r.head().head_bytes == 27);
    CHECK(r.feed("GARBAGE\n") == HeadStatus::Done);  // deaf after the verdict
    CHECK(r.bytes_seen() == 27);
}

TEST_CASE("http: malformed requests are 400", "[http]") {
    const char* cases[] = {
        "GET / HTTP/1.1\nHost: a\r\n\r\n",              // bare LF
        "GET / HTTP/1.1\rHost: a\r\n\r\n",              // bare CR
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", // control character
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",           // two spaces
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",           // trailing space
        "GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n",         // tab in the line
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",    // absolute-form
        "GET x HTTP/1.1\r\nHost: a\r\n\r\n",            // not origin-form
        "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",         // fragment
        "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",    // raw non-ASCII in the target
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",            // method not a token
        "GET / HTTP/1.1x\r\nHost: a\r\n\r\n",           // version shape
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                       // HTTP/1.1 without Host
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", // two Hosts
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",          // bad Host
        "GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [zz]:1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",   // obs-fold
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",  // obs-fold with a tab
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",               // whitespace before the first field
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",               // whitespace before ':'
        "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n",         // empty name
        "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Key: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Protocol: xmpp, a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
        "\r\n\r\n",  // an empty line then an empty request line... is still the start
    };
    for (const char* c : cases) {
        INFO(xs::routing::http::printable(c, 200));
        const std::string in = c;
        if (in == "\r\n\r\n") {  // leading empty lines are skipped: still NeedMore
            CHECK(read(in).status() == HeadStatus::NeedMore);
            continue;
        }
        CHECK(reject_status(in) == 400);
        require_split_invariant(in);
    }
    auto nul = read(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35));
    REQUIRE(nul.status() == HeadStatus::Reject);
    CHECK(nul.reject_status() == 400);
    CHECK(nul.bytes_seen() == 30);  // decided at the NUL itself
    CHECK(nul.detail() == "NUL byte (at byte 30)");
}

TEST_CASE("http: request smuggling attempts are 400", "[http]") {
    const char* cases[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunk\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0b\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (const char* c : cases) {
        INFO(xs::routing::http::printable(c, 200));
        CHECK(reject_status(c) == 400);
        require_split_invariant(c);
    }
    // Odd case and spacing of a lone chunked is the same thing, accepted.
    for (const char* te : {"chunked", "Chunked", "CHUNKED", " \tchunked\t "}) {
        auto r = read(std::string("POST / HTTP/1.1\r\nHost: a\r\ntransfer-ENCODING:") + te + "\r\n\r\n");
        REQUIRE(r.status() == HeadStatus::Done);
        CHECK(r.head().chunked);
        CHECK_FALSE(r.head().has_content_length);
    }
}

TEST_CASE("http: unsupported methods are 501, versions 505", "[http]") {
    for (const char* m : {"PUT", "DELETE", "CONNECT", "TRACE", "PATCH", "PRI", "get"})
        CHECK(reject_status(std::string(m) + " / HTTP/1.1\r\nHost: a\r\n\r\n") == 501);
    for (const char* m : {"GET", "HEAD", "POST", "OPTIONS"})
        CHECK(read(std::string(m) + " / HTTP/1.1\r\nHost: a\r\n\r\n").status() == HeadStatus::Done);
    for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0"})
        CHECK(reject_status(std::string("GET / ") + v + "\r\nHost: a\r\n\r\n") == 505);
    // An unsupported method with a malformed version is still 400 (the line is checked first).
    CHECK(reject_status("PUT / HTTP/x\r\nHost: a\r\n\r\n") == 400);
}

TEST_CASE("http: 431 for a head over max_head_bytes, without holding it", "[http]") {
    // A 1 MB head fed in 4 KiB pieces: refused at exactly byte max_head_bytes.
    HttpRequestReader r(8192);
    std::string piece = "X-Filler: " + std::string(4080, 'a') + "\r\n";
    REQUIRE(r.feed("GET / HTTP/1.1\r\nHost: a\r\n") == HeadStatus::NeedMore);
    std::size_t fed = 0;
    while (fed < (1u << 20) && r.status() == HeadStatus::NeedMore) {
        r.feed(piece);
        fed += piece.size();
    }
    REQUIRE(r.status() == HeadStatus::Reject);
    CHECK(r.reject_status() == 431);
    CHECK(r.bytes_seen() == 8192);
    CHECK(fed < 3 * piece.size());

    // One line without a CRLF, its target under max_target_bytes: 431 at byte max.
    HttpRequestReader one(1000, 8192);
    one.feed("GET /" + std::string(1 << 20, 'a'));
    CHECK(one.reject_status() == 431);
    CHECK(one.bytes_seen() == 1000);
    // The same with a smaller target limit: 414 first.
    HttpRequestReader two(1000, 100);
    two.feed("GET /" + std::string(1 << 20, 'a'));
    CHECK(two.reject_status() == 414);
    CHECK(two.bytes_seen() == 105);
}

TEST_CASE("http: head exactly at the limit is accepted, one byte more is 431", "[http]") {
    const std::string in = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";  // 27 bytes
    CHECK(read(in, in.size()).status() == HeadStatus::Done);
    auto r = read(in, in.size() - 1);
    REQUIRE(r.status() == HeadStatus::Reject);
    CHECK(r.reject_status() == 431);
    CHECK(r.bytes_seen() == in.size() - 1);
    std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
    CHECK(reject_status(many + "\r\n") == 431);
}

TEST_CASE("http: 414 for a request target over max_target_bytes", "[http]") {
    const std::string target = "/" + std::string(99, 'a');  // 100 bytes
    const std::string in = "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(read(in, 16384, 100).status() == HeadStatus::Done);
    auto r = read(in, 16384, 99);
    REQUIRE(r.status() == HeadStatus::Reject);
    CHECK(r.reject_status() == 414);
    CHECK(r.bytes_seen() == 4 + 100);  // at the first byte over the limit
    for_each_split(
        in, [](const std::vector<std::string_view>& p) { return request_outcome(p, 16384, 99); },
        [](const std::string& whole, const std::string& split) { REQUIRE(split == whole); });
}

TEST_CASE("http: refusal details are printable ASCII", "[http]") {
    // regressions/fuzz_http_request/detail-host-non-ascii: normalize_domain's reason quoted the
    // raw bytes of the Host.
    const std::string long_label = "GET / HTTP/1.1\r\nHost: " + std::string(70, '\xff') + ".example\r\n\r\n";
    for (std::string in : {long_label, std::string("GET / HTTP/1.1\r\nHost: \x93\xff.example\r\n\r\n"),
                           std::string("GET / HTTP/1.1\r\nX\xff: v\r\n\r\n"), std::string("G\xc3\xa9T / HTTP/1.1\r\n\r\n"),
                           std::string("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xe2\x80\x8b\r\n\r\n")}) {
        auto r = read(in);
        REQUIRE(r.status() == HeadStatus::Reject);
        CHECK(r.reject_status() == 400);
        for (unsigned char c : r.detail()) {
            INFO(r.detail());
            REQUIRE((c >= 0x20 && c < 0x7F));
        }
    }
}
