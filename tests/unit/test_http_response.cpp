// routing/http_response: response heads, body framing, the proxy's refusals.
#include <catch2/catch.hpp>
#include <string>

#include "http_support.hpp"
#include "routing/http_response.hpp"

using namespace xs::routing;
using xs::test::for_each_split;

namespace {

std::string describe_response(const HttpResponseReader& r) {
    std::string s = std::to_string(static_cast<int>(r.status())) + " seen=" + std::to_string(r.bytes_seen()) +
                    " " + r.detail();
    if (r.status() != HeadStatus::Done) return s;
    const auto& h = r.head();
    return s + " " + std::to_string(h.status) + " " + h.reason + " cl=" + std::to_string(h.content_length) +
           std::to_string(h.has_content_length) + " ch=" + std::to_string(h.chunked) +
           " ka=" + std::to_string(h.keep_alive) + " up=" + h.upgrade + " head=" + std::to_string(h.head_bytes) +
           " n=" + std::to_string(h.headers.size());
}

std::string response_outcome(const std::vector<std::string_view>& pieces) {
    HttpResponseReader r;
    for (auto p : pieces) r.feed(p);
    return describe_response(r);
}

// Feeds a body framer the pieces; renders its verdict and how many bytes it took.
std::string framing_outcome(BodyFramer f, const std::vector<std::string_view>& pieces) {
    std::size_t used = 0;
    for (auto p : pieces) {
        const std::size_t n = f.feed(p);
        if (n > p.size()) return "took more than fed";
        if (f.status() == BodyStatus::NeedMore && n != p.size()) return "NeedMore without taking all";
        used += n;
    }
    return std::to_string(static_cast<int>(f.status())) + " used=" + std::to_string(used) +
           " body=" + std::to_string(f.body_bytes()) + " " + f.detail();
}

void require_framing_split_invariant(const BodyFramer& f, std::string_view in) {
    for_each_split(
        in, [&](const std::vector<std::string_view>& p) { return framing_outcome(f, p); },
        [](const std::string& whole, const std::string& split) { REQUIRE(split == whole); });
}

HttpResponseHead response(const std::string& in) {
    HttpResponseReader r;
    r.feed(in);
    INFO(r.detail());
    REQUIRE(r.status() == HeadStatus::Done);
    return r.head();
}

}  // namespace

TEST_CASE("http: response heads", "[http]") {
    const std::string up = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n";
    auto h = response(up + "\x81");
    CHECK(h.status == 101);
    CHECK(h.reason == "Switching Protocols");
    CHECK(h.upgrade == "websocket");
    CHECK(h.conn_upgrade);
    CHECK(h.head_bytes == up.size());
    CHECK(response_body_framing(h, "GET").kind() == BodyFramer::Kind::None);
    for_each_split(up, response_outcome, [](const std::string& a, const std::string& b) { REQUIRE(a == b); });

    auto ok = response("HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 42\r\n\r\n");
    CHECK(ok.has_content_length);
    CHECK(ok.content_length == 42);
    CHECK(ok.keep_alive);
    CHECK(response_body_framing(ok, "POST").kind() == BodyFramer::Kind::Length);
    CHECK(response_body_framing(ok, "HEAD").kind() == BodyFramer::Kind::None);

    auto ch = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n");
    CHECK(ch.chunked);
    CHECK(response_body_framing(ch, "GET").kind() == BodyFramer::Kind::Chunked);
    auto gz = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    CHECK_FALSE(gz.chunked);
    CHECK(response_body_framing(gz, "GET").kind() == BodyFramer::Kind::UntilClose);
    auto bare = response("HTTP/1.0 200\r\n\r\n");
    CHECK(bare.reason.empty());
    CHECK_FALSE(bare.keep_alive);
    CHECK(response_body_framing(bare, "GET").kind() == BodyFramer::Kind::UntilClose);
    for (int s : {100, 204, 304})
        CHECK(response_body_framing(response("HTTP/1.1 " + std::to_string(s) + " X\r\nContent-Length: 5\r\n\r\n"), "GET")
                  .kind() == BodyFramer::Kind::None);
    CHECK_FALSE(response("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").keep_alive);
    CHECK(response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive);
}

TEST_CASE("http: malformed responses are refused", "[http]") {
    for (const char* in : {"HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
                           "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n",
                           "HTTP/2.0 200 OK\r\n\r\n", "http/1.1 200 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
                           "\r\nHTTP/1.1 200 OK\r\n\r\n"}) {
        HttpResponseReader r;
        r.feed(in);
        INFO(in);
        CHECK(r.status() == HeadStatus::Reject);
        CHECK_FALSE(r.detail().empty());
    }
    HttpResponseReader big(100);
    big.feed("HTTP/1.1 200 OK\r\nX: " + std::string(1 << 20, 'a'));
    CHECK(big.status() == HeadStatus::Reject);
    CHECK(big.bytes_seen() == 100);
}

TEST_CASE("http: Content-Length bodies end after their length", "[http]") {
    const std::string in = "0123456789HTTP/1.1 200 OK\r\n";
    std::string out = framing_outcome(BodyFramer::length(10), {in});
    CHECK(out == "1 used=10 body=10 ");
    require_framing_split_invariant(BodyFramer::length(10), in);
    auto f = BodyFramer::length(10);
    CHECK(f.feed("01234") == 5);
    CHECK(f.status() == BodyStatus::NeedMore);
    CHECK(f.feed("56789abc") == 5);
    CHECK(f.status() == BodyStatus::Done);
    CHECK(f.feed("more") == 0);
    CHECK(BodyFramer::length(0).status() == BodyStatus::Done);
    CHECK(BodyFramer::none().status() == BodyStatus::Done);
    auto c = BodyFramer::until_close();
    CHECK(c.feed(std::string(100000, 'x')) == 100000);
    CHECK(c.status() == BodyStatus::NeedMore);
}

TEST_CASE("http: chunked bodies in every split", "[http]") {
    const std::string body = "5\r\nhello\r\n1A;name=\"v\" ; x\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                             "0\r\nExpires: never\r\nX-T: 1\r\n\r\n";
    const std::string in = body + "HTTP/1.1 200 OK\r\n";
    CHECK(framing_outcome(BodyFramer::chunked(), {in}) == "1 used=" + std::to_string(body.size()) +
                                                              " body=" + std::to_string(body.size()) + " ");
    require_framing_split_invariant(BodyFramer::chunked(), in);
    CHECK(framing_outcome(BodyFramer::chunked(), {"5 \t ; a=b\r\nhello\r\n0 \r\n\r\n"}) == "1 used=24 body=24 ");
    const std::string simple = "000\r\n\r\n";
    CHECK(framing_outcome(BodyFramer::chunked(), {simple}) == "1 used=7 body=7 ");
    CHECK(framing_outcome(BodyFramer::chunked(), {"A\r\n0123456789\r\n0\r\n\r"}).rfind("0 used=", 0) == 0);
}

TEST_CASE("http: malformed chunked bodies are refused", "[http]") {
    for (const char* in : {"\r\n", "x\r\n", "5\nhello\r\n0\r\n\r\n", "5\r\nhello0\r\n\r\n", "5\r\nhello\n0\r\n\r\n",
                           "5\r\nhello\r\n0\r\nbad\r\n\r\n", "5\r\nhello\r\n0\r\n x: y\r\n\r\n",
                           "1000000000000000\r\n", "5;\x01\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\n",
                           "-5\r\n", "5 x\r\nhello\r\n0\r\n\r\n", "5 \t \n"}) {
        const std::string s = in;
        INFO(xs::routing::http::printable(s));
        const std::string out = framing_outcome(BodyFramer::chunked(), {s});
        CHECK(out.rfind("2 ", 0) == 0);
        require_framing_split_invariant(BodyFramer::chunked(), s);
    }
    auto big = BodyFramer::chunked();
    big.feed("1;" + std::string(BodyFramer::kMaxLineBytes + 1, 'e'));
    CHECK(big.status() == BodyStatus::Reject);
    auto trailers = BodyFramer::chunked();
    std::string t = "0\r\n";
    for (int i = 0; i < 2000; ++i) t += "X-Trailer: 0123456789\r\n";
    trailers.feed(t);
    CHECK(trailers.status() == BodyStatus::Reject);
}

TEST_CASE("http: request body framing", "[http]") {
    HttpRequestReader r;
    r.feed(xs::test::strophe_post());
    REQUIRE(r.status() == HeadStatus::Done);
    auto f = request_body_framing(r.head());
    CHECK(f.kind() == BodyFramer::Kind::Length);
    CHECK(f.feed(xs::test::kStropheBody + "POST") == xs::test::kStropheBody.size());
    CHECK(f.status() == BodyStatus::Done);
    HttpRequestReader c;
    c.feed("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(request_body_framing(c.head()).kind() == BodyFramer::Kind::Chunked);
    HttpRequestReader g;
    g.feed(xs::test::kChromeWs);
    CHECK(request_body_framing(g.head()).status() == BodyStatus::Done);
}

TEST_CASE("http: refusal responses", "[http]") {
    CHECK(http_error_response(400, "", "bad Host") ==
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 9\r\n"
          "Connection: close\r\n\r\nbad Host\n");
    const std::string r = http_error_response(503, "Busy\r\nX: y", "a\r\nb");
    CHECK(r.rfind("HTTP/1.1 503 Busy  X: y\r\n", 0) == 0);
    CHECK(r.find("\r\n\r\na  b\n") != std::string::npos);
    HttpResponseReader back;
    REQUIRE(back.feed(r) == HeadStatus::Done);
    CHECK(back.head().status == 503);
    CHECK(back.head().content_length == 5);
    CHECK(back.head().conn_close);
    CHECK(http_reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(http_reason_phrase(599) == "Error");
}
