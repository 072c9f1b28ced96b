#include <catch2/catch.hpp>

#include "core/sasl.hpp"
#include "core/stanzas.hpp"
#include "core/xml_stream.hpp"

using namespace xs::loadgen;

namespace {
// Parses one stanza (wrapped in a stream) with the loadgen's own parser.
xml::Element parse_one(const std::string& stanza) {
    xml::StreamParser p;
    p.feed("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>" + stanza);
    REQUIRE(p.next() == xml::StreamParser::Event::StreamOpen);
    auto ev = p.next();
    INFO(stanza << "\n" << p.error());
    REQUIRE(ev == xml::StreamParser::Event::Stanza);
    CHECK(p.next() == xml::StreamParser::Event::None);
    return std::move(p.stanza());
}
}  // namespace

TEST_CASE("Jitsi join presence: well-formed, padded to the target size", "[stanzas]") {
    for (std::size_t target : {1024u, 2000u, 4000u}) {
        std::string s = stanzas::jitsi_join("room@conference.meet.test/p1", "p1", true, target, 7);
        CHECK(s.size() >= target - 2);
        CHECK(s.size() <= target + 2);
        auto e = parse_one(s);
        CHECK(e.name == "presence");
        CHECK(e.attr_or("to") == "room@conference.meet.test/p1");
        CHECK(e.child("x", stanzas::kNsMuc));
        CHECK(e.child("nick", "http://jabber.org/protocol/nick")->text == "p1");
        CHECK(e.child("audiomuted")->text == "true");
        CHECK(e.child("videomuted")->text == "true");
    }
    // A small target still gives the full presence; no join marker on an update.
    auto upd = parse_one(stanzas::jitsi_join("r@c/n", "n", false, 10, 1));
    CHECK_FALSE(upd.child("x", stanzas::kNsMuc));
}

TEST_CASE("bridge presence carries a readable time stamp", "[stanzas]") {
    std::string s = stanzas::bridge_presence("jvbbrewery@internal.auth.meet.test/jvb-1", true, 1500,
                                             123456789012ull, 42);
    CHECK(s.size() <= 1500);
    CHECK(s.size() > 1400);
    auto e = parse_one(s);
    auto stamp = stanzas::read_bridge_stamp(e);
    REQUIRE(stamp);
    CHECK(stamp->sent_us == 123456789012ull);
    CHECK(stamp->seq == 42);
    CHECK(e.child("x", stanzas::kNsMuc));
    auto plain = parse_one("<presence><stats xmlns='http://jitsi.org/protocol/colibri'/></presence>");
    CHECK_FALSE(stanzas::read_bridge_stamp(plain));
}

TEST_CASE("login stanzas", "[stanzas]") {
    auto hdr = stanzas::stream_header("meet.test");
    CHECK(hdr.find("to='meet.test'") != std::string::npos);
    CHECK(hdr.starts_with("<?xml version='1.0'?><stream:stream "));
    auto a = parse_one(stanzas::sasl_auth("PLAIN", sasl::plain_message("u", "p")));
    CHECK(a.attr_or("mechanism") == "PLAIN");
    CHECK(sasl::base64_decode(a.text) == sasl::plain_message("u", "p"));
    CHECK(parse_one(stanzas::sasl_auth("ANONYMOUS", "")).text == "=");
    auto b = parse_one(stanzas::bind("bind", "r<1>"));
    CHECK(b.find("resource")->text == "r<1>");
    CHECK(parse_one(stanzas::starttls()).attr_or("xmlns") == stanzas::kNsTls);
    CHECK(parse_one(stanzas::session("s")).child("session", stanzas::kNsSession));
}

TEST_CASE("messages and leave escape what they carry", "[stanzas]") {
    auto m = parse_one(stanzas::groupchat("r@c", "m1", "a <b> & 'c'"));
    CHECK(m.attr_or("type") == "groupchat");
    CHECK(m.child("body")->text == "a <b> & 'c'");
    auto c = parse_one(stanzas::chat("u@d/r", "m2", "x"));
    CHECK(c.attr_or("to") == "u@d/r");
    auto l = parse_one(stanzas::leave("r@c/n'ick"));
    CHECK(l.attr_or("type") == "unavailable");
    CHECK(l.attr_or("to") == "r@c/n'ick");
}

TEST_CASE("templates", "[stanzas]") {
    CHECK(stanzas::expand("conference.{domain}", "domain", "meet.test") == "conference.meet.test");
    CHECK(stanzas::expand("user{i}-{i}", "i", "7") == "user7-7");
    CHECK(stanzas::expand("plain", "i", "7") == "plain");
}
