#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/http_response.hpp"

using xs::loadgen::http::ResponseReader;
using R = ResponseReader::Result;

namespace {

struct Got {
    R result = R::NeedMore;
    int status = 0;
    std::string body;
    bool keep_alive = false;
    std::string extra, error;
    bool operator==(const Got& o) const {
        return result == o.result && status == o.status && body == o.body && keep_alive == o.keep_alive &&
               extra == o.extra && (result != R::Error || error == o.error);
    }
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
    return os << "{" << static_cast<int>(g.result) << " " << g.status << " '" << g.body << "' ka=" << g.keep_alive
              << " extra='" << g.extra << "' err='" << g.error << "'}";
}

// Feeds `bytes` in the pieces the cuts make (a cut is an offset), then the close if `eof`.
Got read(const std::string& bytes, const std::vector<std::size_t>& cuts, bool eof = false) {
    ResponseReader r;
    Got g;
    std::size_t prev = 0;
    auto piece = [&](std::size_t to) {
        if (g.result == R::NeedMore || g.result == R::Done) g.result = r.feed(bytes.data() + prev, to - prev);
        prev = to;
    };
    for (std::size_t c : cuts) piece(c);
    piece(bytes.size());
    if (eof && g.result == R::NeedMore) g.result = r.finish();
    g.status = r.status();
    g.body = r.body();
    g.keep_alive = r.keep_alive();
    g.extra = r.extra();
    g.error = r.error();
    return g;
}

// The same result for the whole input, every two-piece split and byte by byte.
Got read_every_split(const std::string& bytes, bool eof = false) {
    Got whole = read(bytes, {}, eof);
    for (std::size_t i = 1; i < bytes.size(); ++i) {
        INFO("split at " << i);
        REQUIRE(read(bytes, {i}, eof) == whole);
    }
    std::vector<std::size_t> all;
    for (std::size_t i = 1; i < bytes.size(); ++i) all.push_back(i);
    REQUIRE(read(bytes, all, eof) == whole);
    return whole;
}

}  // namespace

TEST_CASE("http: a Content-Length response, at every split", "[http]") {
    const std::string body = "<body xmlns='http://jabber.org/protocol/httpbind' sid='s1'/>";
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nAccess-Control-Allow-Origin: *\r\n\r\n" + body;
    Got g = read_every_split(resp);
    CHECK(g.result == R::Done);
    CHECK(g.status == 200);
    CHECK(g.body == body);
    CHECK(g.keep_alive);
    CHECK(g.extra.empty());
    // Connection: close (any case, among other tokens) ends the connection after the answer.
    Got c = read_every_split("HTTP/1.1 200 OK\r\nconnection: Foo, CLOSE\r\nContent-Length: 2\r\n\r\nok");
    CHECK(c.result == R::Done);
    CHECK_FALSE(c.keep_alive);
    CHECK(c.body == "ok");
    // HTTP/1.0: close unless keep-alive is said.
    CHECK_FALSE(read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", {}).keep_alive);
    CHECK(read("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", {}).keep_alive);
}

TEST_CASE("http: a chunked response with extensions and trailers, at every split", "[http]") {
    const std::string resp =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\n<body\r\n"
        "18;name=value\r\n xmlns='urn:x'>hello</bo\r\n"
        "3\r\ndy>\r\n"
        "0\r\nX-Trailer: 1\r\n\r\n";
    Got g = read_every_split(resp);
    CHECK(g.result == R::Done);
    CHECK(g.body == "<body xmlns='urn:x'>hello</body>");
    CHECK(g.keep_alive);
    Got lower = read_every_split("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n");
    CHECK(lower.body == "0123456789");
}

TEST_CASE("http: interim 1xx answers are skipped; 204 has no body", "[http]") {
    Got g = read_every_split("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(g.result == R::Done);
    CHECK(g.status == 200);
    CHECK(g.body == "abc");
    Got n = read_every_split("HTTP/1.1 204 No Content\r\n\r\n");
    CHECK(n.result == R::Done);
    CHECK(n.body.empty());
}

TEST_CASE("http: a body without length runs to the close", "[http]") {
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<body/>";
    Got open = read(resp, {});
    CHECK(open.result == R::NeedMore);
    Got g = read_every_split(resp, true);
    CHECK(g.result == R::Done);
    CHECK(g.body == "<body/>");
    CHECK_FALSE(g.keep_alive);
}

TEST_CASE("http: truncated responses are errors at the close", "[http]") {
    CHECK(read("", {}, true).result == R::Error);
    CHECK(read("", {}, true).error == "connection closed before the response");
    CHECK(read("HTTP/1.1 200 OK\r\nContent-Le", {}, true).result == R::Error);
    Got cl = read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", {}, true);
    CHECK(cl.result == R::Error);
    CHECK(cl.error.find("3 bytes read") != std::string::npos);
    CHECK(read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", {}, true).result == R::Error);
}

TEST_CASE("http: malformed or oversized responses", "[http]") {
    auto err = [](const std::string& s) { return read_every_split(s).result == R::Error; };
    CHECK(err("HTTP/2 200 OK\r\n\r\n"));
    CHECK(err("HTTP/1.1 2000 OK\r\n\r\n"));
    CHECK(err("ICY 200 OK\r\n\r\n"));
    CHECK(err("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"));
    CHECK(err("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"));
    CHECK(err("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"));
    CHECK(err("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"));
    CHECK(err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
    CHECK(err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"));
    // Equal duplicates are fine.
    CHECK(read_every_split("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na").result == R::Done);
    ResponseReader small(64, 8);
    CHECK(small.feed(std::string(100, 'x')) == R::Error);
    ResponseReader body_limit(1024, 8);
    CHECK(body_limit.feed("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n") == R::Error);
    ResponseReader chunk_limit(1024, 8);
    CHECK(chunk_limit.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n4\r\n") == R::Error);
}

TEST_CASE("http: bytes after the response, and the next response after reset()", "[http]") {
    ResponseReader r;
    CHECK(r.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP") == R::Done);
    CHECK(r.body() == "ok");
    CHECK(r.extra() == "HTTP");
    CHECK(r.feed("/1.1") == R::Done);
    CHECK(r.extra() == "HTTP/1.1");
    r.reset();
    CHECK(r.bytes_seen() == 0);
    CHECK(r.feed("HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy") == R::Done);
    CHECK(r.status() == 503);
    CHECK(r.body() == "busy");
    CHECK_FALSE(r.keep_alive());
    CHECK(r.extra().empty());
}
