// The BOSH transport without sockets: what it asks the Client to write and close on each link,
// given the answers a server (or a proxy that closes after every answer) sends.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/bosh.hpp"
#include "core/xml_stream.hpp"
#include "src/transport.hpp"

using namespace xs::loadgen;
using In = Transport::In;

namespace {

const std::string kHead = "POST /http-bind?room=r1 HTTP/1.1\r\nHost: meet.example.com\r\n";

std::unique_ptr<Transport> bosh() {
    TransportSpec s;
    s.kind = TransportKind::Bosh;
    s.http_target = "/http-bind?room=r1";
    s.http_host = "meet.example.com";
    s.bosh_wait = 30;
    return make_transport(s);
}

std::string take(Transport& t, std::size_t link) {
    std::string b;
    b.swap(t.out()[link].bytes);
    return b;
}

std::string rid_of(const std::string& request) {
    auto p = request.find("rid='");
    REQUIRE(p != std::string::npos);
    return request.substr(p + 5, request.find('\'', p + 5) - p - 5);
}

std::string http(const std::string& body, const std::string& extra_headers = "") {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n" + extra_headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string body(const std::string& inner, const std::string& attrs = "") {
    return "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams'"
           " sid='s1'" + attrs + ">" + inner + "</body>";
}

std::vector<std::string> stanzas(xml::StreamParser& p) {
    std::vector<std::string> out;
    for (;;) {
        auto e = p.next();
        if (e == xml::StreamParser::Event::None) return out;
        if (e == xml::StreamParser::Event::StreamOpen) out.push_back("open");
        else if (e == xml::StreamParser::Event::Stanza) out.push_back(p.stanza().name);
        else if (e == xml::StreamParser::Event::StreamClose) out.push_back("close");
        else out.push_back("error: " + p.error());
    }
}

// A transport past its session creation: link 0 carries the empty request the server holds.
struct Started {
    std::unique_ptr<Transport> t = bosh();
    xml::StreamParser parser;
    std::string poll;  // the held request, on link 0
    Started() {
        REQUIRE(t->connected(0) == In::Established);
        t->open("meet.example.com");
        std::string creation = take(*t, 0);
        CHECK(creation.starts_with(kHead));
        CHECK(creation.find("Content-Type: text/xml; charset=utf-8\r\n") != std::string::npos);
        CHECK(creation.find(" to='meet.example.com' xml:lang='en' wait='30' hold='1' ver='1.6'") != std::string::npos);
        CHECK(take(*t, 1).empty());
        std::string features = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                               "<mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>";
        std::string a = http(body(features, " requests='2' wait='30'"));
        REQUIRE(t->input(0, a.data(), a.size(), parser) == In::Ok);
        CHECK(stanzas(parser) == std::vector<std::string>{"open", "stream:features"});
        poll = take(*t, 0);  // kept alive: the next request goes on the same connection
        CHECK(poll.find("sid='s1' xmlns='http://jabber.org/protocol/httpbind'/>") != std::string::npos);
        CHECK(std::stoull(rid_of(poll)) == std::stoull(rid_of(creation)) + 1);
        CHECK(t->requests() == 2);
    }
    In feed(std::size_t link, const std::string& bytes) { return t->input(link, bytes.data(), bytes.size(), parser); }
};

}  // namespace

TEST_CASE("bosh transport: stanzas go in a second request on the other link", "[bosh]") {
    Started s;
    s.t->send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    std::string req = take(*s.t, 1);
    CHECK(req.find("<iq xmlns='jabber:client' type='set' id='bind'>") != std::string::npos);
    CHECK(std::stoull(rid_of(req)) == std::stoull(rid_of(s.poll)) + 1);
    s.t->send("<presence/>");  // two out: it waits
    CHECK(take(*s.t, 0).empty());
    CHECK(take(*s.t, 1).empty());
    // The held request is answered (the server holds the newer one): the queue goes on link 0.
    REQUIRE(s.feed(0, http(body(""))) == In::Ok);
    std::string next = take(*s.t, 0);
    CHECK(next.find("<presence xmlns='jabber:client'/>") != std::string::npos);
    CHECK(std::stoull(rid_of(next)) == std::stoull(rid_of(req)) + 1);
    // A chunked answer, byte by byte.
    std::string b = body("<iq type='result' id='bind'/>");
    char size[16];
    std::snprintf(size, sizeof size, "%zx", b.size());
    std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(size) + "\r\n" +
                          b + "\r\n0\r\n\r\n";
    for (char c : chunked) REQUIRE(s.t->input(1, &c, 1, s.parser) == In::Ok);
    CHECK(stanzas(s.parser) == std::vector<std::string>{"iq"});
    CHECK_FALSE(s.t->peer_closed());
}

TEST_CASE("bosh transport: Connection: close, then a new connection for the next request", "[bosh]") {
    Started s;
    s.t->send("<presence/>");
    take(*s.t, 1);
    REQUIRE(s.feed(0, http(body("<message/>"), "Connection: close\r\n")) == In::Ok);
    CHECK(stanzas(s.parser) == std::vector<std::string>{"message"});
    CHECK(s.t->out()[0].close);  // the Client closes link 0
    s.t->out()[0].close = false;
    s.t->send("<iq/>");
    // Link 1 is busy: the request goes on link 0, which the Client connects anew.
    CHECK(take(*s.t, 0).find("<iq xmlns='jabber:client'/>") != std::string::npos);
    // The server closed link 1 after its answer without saying so: fine while nothing is out.
    REQUIRE(s.feed(1, http(body(""))) == In::Ok);
    CHECK(s.t->eof(1, s.parser) == In::Ok);
}

TEST_CASE("bosh transport: a request on a connection closed under it is sent again", "[bosh]") {
    Started s;
    std::string poll_rid = rid_of(s.poll);
    // The connection of the held request closes before any byte of its answer.
    REQUIRE(s.t->eof(0, s.parser) == In::Ok);
    std::string again = take(*s.t, 0);
    CHECK(rid_of(again) == poll_rid);
    CHECK(again == s.poll);
    REQUIRE(s.t->connected(0) == In::Ok);
    // Once more: that is an error.
    CHECK(s.t->eof(0, s.parser) == In::Error);
    CHECK(s.t->error_kind() == "closed");
}

TEST_CASE("bosh transport: an answer cut by the close, an answer running to the close", "[bosh]") {
    Started cut;
    std::string part = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<body";
    REQUIRE(cut.feed(0, part) == In::Ok);
    CHECK(cut.t->eof(0, cut.parser) == In::Error);
    CHECK(cut.t->error_kind() == "closed");

    Started to_close;
    REQUIRE(to_close.feed(0, "HTTP/1.1 200 OK\r\n\r\n" + body("<message/>")) == In::Ok);
    CHECK(to_close.t->eof(0, to_close.parser) == In::Ok);
    CHECK(stanzas(to_close.parser) == std::vector<std::string>{"message"});
    CHECK_FALSE(take(*to_close.t, 0).empty());  // a new held request, on a new connection
}

TEST_CASE("bosh transport: errors by kind", "[bosh]") {
    Started busy;
    CHECK(busy.feed(0, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy") == In::Error);
    CHECK(busy.t->error_kind() == "http:503");
    Started junk;
    CHECK(junk.feed(0, "SSH-2.0-OpenSSH\r\n\r\n") == In::Error);
    CHECK(junk.t->error_kind() == "bosh:http");
    Started unasked;
    CHECK(unasked.feed(1, "HTTP/1.1 200 OK\r\n") == In::Error);  // nothing out on link 1
    CHECK(unasked.t->error_kind() == "bosh:http");
    Started html;
    CHECK(html.feed(0, http("<html/>")) == In::Error);
    CHECK(html.t->error_kind() == "bosh:protocol");
    Started gone;
    CHECK(gone.feed(0, http("<body type='terminate' condition='item-not-found' "
                            "xmlns='http://jabber.org/protocol/httpbind'/>")) == In::Error);
    CHECK(gone.t->error_kind() == "bosh:item-not-found");
    CHECK(gone.t->peer_closed());
    // A stream error inside the terminate reaches the parser (the Client names it first).
    Started conflict;
    std::string e = "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
    CHECK(conflict.feed(0, http(body(e, " type='terminate' condition='remote-stream-error'"))) == In::Error);
    CHECK(stanzas(conflict.parser) == std::vector<std::string>{"stream:error"});
}

TEST_CASE("bosh transport: restart after SASL, terminate at the end", "[bosh]") {
    Started s;
    s.t->send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'>=</auth>");
    CHECK_FALSE(take(*s.t, 1).empty());
    REQUIRE(s.feed(0, http(body(""))) == In::Ok);  // the server lets the held request go
    CHECK(take(*s.t, 0).empty());                  // the auth request is held now
    REQUIRE(s.feed(1, http(body("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"))) == In::Ok);
    CHECK(stanzas(s.parser) == std::vector<std::string>{"success"});
    CHECK_FALSE(take(*s.t, 0).empty());  // none out: a new empty request to hold
    s.parser.reset();                    // as the Client does
    s.t->open("meet.example.com");
    std::string restart = take(*s.t, 1);
    CHECK(restart.find(" sid='s1' to='meet.example.com' xml:lang='en' xmpp:restart='true' ") != std::string::npos);
    REQUIRE(s.feed(0, http(body(""))) == In::Ok);
    REQUIRE(s.feed(1, http(body("<stream:features><bind/></stream:features>"))) == In::Ok);
    CHECK(stanzas(s.parser) == std::vector<std::string>{"open", "stream:features"});  // a new stream
    CHECK_FALSE(take(*s.t, 0).empty());

    s.t->close();
    std::string term = take(*s.t, 1);
    CHECK(term.find(" type='terminate' ") != std::string::npos);
    s.t->send("<late/>");
    CHECK(take(*s.t, 0).empty());
    CHECK(take(*s.t, 1).empty());
    // The server answers both requests with the terminate; the session ends with the last.
    std::string t = http("<body type='terminate' xmlns='http://jabber.org/protocol/httpbind'/>");
    REQUIRE(s.feed(0, t) == In::Ok);
    CHECK_FALSE(s.t->peer_closed());  // the terminate's own answer is on its way
    REQUIRE(s.feed(1, t) == In::Ok);
    CHECK(s.t->peer_closed());
}
