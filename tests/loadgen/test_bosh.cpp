#include <catch2/catch.hpp>

#include <string>

#include "core/bosh.hpp"

using namespace xs::loadgen::bosh;
using Status = Session::Status;

namespace {

const std::string kNs = "xmlns='http://jabber.org/protocol/httpbind'";

SessionParams params(std::string to = "meet.example.com") {
    SessionParams p;
    p.to = std::move(to);
    return p;
}

// Prosody 0.12's answer to a session request (mod_bosh), features included.
std::string creation_answer(const std::string& sid, const std::string& requests = "2") {
    return "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams' "
           "sid='" + sid + "' requests='" + requests + "' hold='1' inactivity='30' polling='5' wait='45' "
           "authid='" + sid + "' secure='true' ver='1.6' from='meet.example.com' xmlns:xmpp='urn:xmpp:xbosh' "
           "xmpp:version='1.0'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
           "<mechanism>ANONYMOUS</mechanism></mechanisms></stream:features></body>";
}

std::string answer(const std::string& inner = "") {
    return "<body " + kNs + " xmlns:stream='http://etherx.jabber.org/streams' sid='s1'>" + inner + "</body>";
}

// A session past its creation (sid s1, the server's requests as given).
Session created(std::uint64_t rid = 100, const std::string& requests = "2") {
    Session s(params(), rid);
    auto c = s.next();
    REQUIRE(c);
    std::string inner;
    REQUIRE(s.on_response(c->rid, creation_answer("s1", requests), inner) == Status::Ok);
    return s;
}

}  // namespace

TEST_CASE("bosh: the wrappers a client sends", "[bosh]") {
    CHECK(creation_body(7, params()) ==
          "<body rid='7' to='meet.example.com' xml:lang='en' wait='60' hold='1' ver='1.6' xmpp:version='1.0' "
          "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>");
    CHECK(payload_body(8, "s&1", "") == "<body rid='8' sid='s&amp;1' " + kNs + "/>");
    CHECK(payload_body(8, "s1", "<presence/>") == "<body rid='8' sid='s1' " + kNs + "><presence/></body>");
    CHECK(restart_body(9, "s1", params()) ==
          "<body rid='9' sid='s1' to='meet.example.com' xml:lang='en' xmpp:restart='true' "
          "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>");
    CHECK(terminate_body(10, "s1", "<presence type='unavailable'/>") ==
          "<body rid='10' sid='s1' type='terminate' " + kNs + "><presence type='unavailable'/></body>");
    std::string post = post_request("/http-bind?room=r1", "meet.example.com", "<body/>");
    CHECK(post == "POST /http-bind?room=r1 HTTP/1.1\r\nHost: meet.example.com\r\n"
                  "Content-Type: text/xml; charset=utf-8\r\nContent-Length: 7\r\n\r\n<body/>");
    for (int i = 0; i < 100; ++i) {
        std::uint64_t r = initial_rid();
        CHECK(r >= (1u << 20));
        CHECK(r < (1ull << 32));
    }
}

TEST_CASE("bosh: reading a response's <body/>", "[bosh]") {
    std::string err;
    std::string text = creation_answer("abc-123");
    auto b = read_body(text, &err);
    REQUIRE(b);
    CHECK(b->attr("sid") == "abc-123");
    CHECK(b->attr("requests") == "2");
    CHECK(b->attr("xmpp:version") == "1.0");
    CHECK(b->inner.starts_with("<stream:features>"));
    CHECK(b->inner.ends_with("</stream:features>"));
    CHECK_FALSE(b->has("type"));

    std::string empty = "<?xml version='1.0'?>\n<body type=\"terminate\" condition='item-not-found' " + kNs + "/>\n";
    auto e = read_body(empty, &err);
    REQUIRE(e);
    CHECK(e->attr("type") == "terminate");
    CHECK(e->attr("condition") == "item-not-found");
    CHECK(e->inner.empty());

    std::string prefixed = "<b:body xmlns:b='http://jabber.org/protocol/httpbind' sid='x&amp;y'><iq/></b:body>";
    auto p = read_body(prefixed, &err);
    REQUIRE(p);
    CHECK(p->attr("sid") == "x&y");
    CHECK(p->inner == "<iq/>");
    CHECK(read_body("<body " + kNs + "></body>", &err)->inner.empty());

    CHECK_FALSE(read_body("", &err));
    CHECK_FALSE(read_body("<html><body/></html>", &err));
    CHECK(err.find("<html>") != std::string::npos);
    CHECK_FALSE(read_body("<body xmlns='urn:other'/>", &err));
    CHECK_FALSE(read_body("<body " + kNs + "><iq/>", &err));
    CHECK_FALSE(read_body("<body " + kNs + "/><iq/>", &err));
    CHECK_FALSE(read_body("<body " + kNs + "></body>x", &err));
    CHECK_FALSE(read_body("<body sid=x " + kNs + "/>", &err));
    CHECK_FALSE(read_body("<body sid='&bogus;' " + kNs + "/>", &err));
}

TEST_CASE("bosh: session creation, then one held request and at most one more", "[bosh]") {
    Session s(params(), 1000);
    CHECK_FALSE(s.created());
    auto c = s.next();
    REQUIRE(c);
    CHECK(c->rid == 1000);
    CHECK(c->body == creation_body(1000, params()));
    s.queue("<auth/>");
    CHECK_FALSE(s.next());  // nothing else until the session exists
    CHECK(s.in_flight() == 1);

    std::string inner;
    REQUIRE(s.on_response(1000, creation_answer("s1"), inner) == Status::Ok);
    CHECK(s.created());
    CHECK(s.sid() == "s1");
    CHECK(s.server_requests() == 2);
    CHECK(s.wait() == 45);
    CHECK(s.inactivity() == 30);
    CHECK(s.limit() == 2);
    CHECK(inner.starts_with("<stream:features>"));

    auto r1 = s.next();  // the queued stanza
    REQUIRE(r1);
    CHECK(r1->rid == 1001);
    CHECK(r1->body == payload_body(1001, "s1", "<auth/>"));
    CHECK_FALSE(s.next());  // one out, nothing queued: the server holds it
    s.queue("<iq id='a'/>");
    s.queue("<iq id='b'/>");
    auto r2 = s.next();  // a second request carries the stanzas
    REQUIRE(r2);
    CHECK(r2->rid == 1002);
    CHECK(r2->body == payload_body(1002, "s1", "<iq id='a'/><iq id='b'/>"));
    s.queue("<iq id='c'/>");
    CHECK_FALSE(s.next());  // never more than two out
    CHECK(s.in_flight() == 2);

    inner.clear();
    REQUIRE(s.on_response(1001, answer("<success/>"), inner) == Status::Ok);
    CHECK(inner == "<success/>");
    auto r3 = s.next();
    REQUIRE(r3);
    CHECK(r3->rid == 1003);
    CHECK(r3->body == payload_body(1003, "s1", "<iq id='c'/>"));
    inner.clear();
    REQUIRE(s.on_response(1002, answer(), inner) == Status::Ok);
    REQUIRE(s.on_response(1003, answer(), inner) == Status::Ok);
    CHECK(inner.empty());
    auto poll = s.next();  // none out: an empty request for the server to hold
    REQUIRE(poll);
    CHECK(poll->rid == 1004);
    CHECK(poll->body == payload_body(1004, "s1", ""));
    CHECK(s.next_rid() == 1005);
}

TEST_CASE("bosh: the server's requests='1' is respected", "[bosh]") {
    Session s = created(50, "1");
    CHECK(s.limit() == 1);
    auto poll = s.next();
    REQUIRE(poll);
    s.queue("<presence/>");
    CHECK_FALSE(s.next());
    std::string inner;
    REQUIRE(s.on_response(poll->rid, answer(), inner) == Status::Ok);
    auto r = s.next();
    REQUIRE(r);
    CHECK(r->body == payload_body(52, "s1", "<presence/>"));
}

TEST_CASE("bosh: answers are taken in rid order", "[bosh]") {
    Session s = created(10);
    auto a = s.next();
    s.queue("<message id='1'/>");
    auto b = s.next();
    REQUIRE(a);
    REQUIRE(b);
    std::string inner;
    REQUIRE(s.on_response(b->rid, answer("<second/>"), inner) == Status::Ok);
    CHECK(inner.empty());           // waits for rid a
    CHECK(s.in_flight() == 2);
    REQUIRE(s.on_response(a->rid, answer("<first/>"), inner) == Status::Ok);
    CHECK(inner == "<first/><second/>");
    CHECK(s.in_flight() == 0);
    CHECK(s.on_response(a->rid, answer(), inner) == Status::Error);  // answered twice
    CHECK(s.error().find("not out") != std::string::npos);
}

TEST_CASE("bosh: restart after SASL, then terminate", "[bosh]") {
    Session s = created(20);
    s.restart();
    auto r = s.next();
    REQUIRE(r);
    CHECK(r->body == restart_body(21, "s1", params()));
    std::string inner;
    REQUIRE(s.on_response(21, answer("<stream:features><bind/></stream:features>"), inner) == Status::Ok);
    auto poll = s.next();
    REQUIRE(poll);
    s.queue("<presence type='unavailable'/>");
    s.terminate();
    auto t = s.next();
    REQUIRE(t);
    CHECK(t->body == terminate_body(23, "s1", "<presence type='unavailable'/>"));
    CHECK(s.terminate_sent());
    s.queue("<late/>");
    CHECK_FALSE(s.next());  // nothing after the terminate
    inner.clear();
    // Prosody answers every held request with the terminate.
    std::string term = "<body type='terminate' " + kNs + " xmlns:stream='http://etherx.jabber.org/streams'/>";
    CHECK(s.on_response(22, term, inner) == Status::Terminated);
    CHECK(s.condition().empty());
    CHECK(s.on_response(23, term, inner) == Status::Terminated);
    CHECK_FALSE(s.next());
}

TEST_CASE("bosh: the server ends a session, or answers badly", "[bosh]") {
    Session refused(params("nowhere.invalid"), 5);
    auto c = refused.next();
    REQUIRE(c);
    std::string inner;
    CHECK(refused.on_response(5, "<body type='terminate' condition='improper-addressing' " + kNs + "/>", inner) ==
          Status::Terminated);
    CHECK(refused.condition() == "improper-addressing");
    CHECK_FALSE(refused.created());
    CHECK_FALSE(refused.next());

    Session s = created(30);
    auto poll = s.next();
    REQUIRE(poll);
    inner.clear();
    std::string err = "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
    CHECK(s.on_response(poll->rid, "<body type='terminate' condition='remote-stream-error' " + kNs +
                                        " xmlns:stream='http://etherx.jabber.org/streams'>" + err + "</body>",
                        inner) == Status::Terminated);
    CHECK(s.condition() == "remote-stream-error");
    CHECK(inner == err);  // the stream error reaches the stream parser

    Session nosid(params(), 1);
    REQUIRE(nosid.next());
    CHECK(nosid.on_response(1, "<body " + kNs + "/>", inner) == Status::Error);
    CHECK(nosid.error().find("without a sid") != std::string::npos);

    Session html(params(), 1);
    REQUIRE(html.next());
    CHECK(html.on_response(1, "<html>busy</html>", inner) == Status::Error);
    CHECK_FALSE(html.next());
}
