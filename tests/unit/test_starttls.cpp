// The STARTTLS negotiation of a terminating listener (routing/starttls).
#include <catch2/catch.hpp>

#include <random>

#include "routing/starttls.hpp"
#include "routing/stream_header_sniffer.hpp"

using namespace xs::routing;

namespace {

StartTlsStatus feed_split(std::string_view in, std::mt19937& rng, StartTlsReader& r) {
    std::size_t i = 0;
    StartTlsStatus s = StartTlsStatus::NeedMore;
    while (i < in.size()) {
        std::size_t n = std::uniform_int_distribution<std::size_t>(1, in.size() - i)(rng);
        s = r.feed(in.substr(i, n));
        i += n;
    }
    return s;
}

}  // namespace

TEST_CASE("the offer is a stream header that the sniffer accepts, with required STARTTLS",
          "[starttls]") {
    std::string offer = starttls_offer("meet.example.com", "jabber:client", "abc123");
    StreamHeaderSniffer sn;
    REQUIRE(sn.feed(offer) == SniffStatus::Done);
    CHECK(sn.header().content_ns == "jabber:client");
    CHECK(offer.find("from='meet.example.com'") != std::string::npos);
    CHECK(offer.find("id='abc123'") != std::string::npos);
    CHECK(offer.substr(sn.header().consumed) ==
          "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
          "</stream:features>");
    CHECK(starttls_offer("", "", "").find("from=") == std::string::npos);
    CHECK(starttls_offer("a'b", "jabber:client", "").find("from='a&apos;b'") != std::string::npos);
}

TEST_CASE("what real clients send is accepted in any split", "[starttls]") {
    const char* good[] = {
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",                 // slixmpp, openssl
        "<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>",
        " \n<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls' />",             // keepalive first
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>",
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\n</starttls>",
    };
    std::mt19937 rng(7);
    for (const char* g : good) {
        INFO(g);
        StartTlsReader whole;
        CHECK(whole.feed(g) == StartTlsStatus::Proceed);
        for (int k = 0; k < 30; ++k) {
            StartTlsReader r;
            CHECK(feed_split(g, rng, r) == StartTlsStatus::Proceed);
        }
        StartTlsReader bytewise;
        std::string_view sv(g);
        StartTlsStatus s = StartTlsStatus::NeedMore;
        for (std::size_t i = 0; i < sv.size(); ++i) {
            CHECK(s == StartTlsStatus::NeedMore);
            s = bytewise.feed(sv.substr(i, 1));
        }
        CHECK(s == StartTlsStatus::Proceed);
    }
    CHECK(starttls_proceed() == "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
}

TEST_CASE("anything but STARTTLS is refused: TLS is required", "[starttls]") {
    struct Case {
        const char* in;
        StreamCondition c;
    } cases[] = {
        {"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFAYgBj</auth>",
         StreamCondition::PolicyViolation},
        {"<iq type='get' id='1'><query xmlns='jabber:iq:version'/></iq>", StreamCondition::PolicyViolation},
        {"</stream:stream>", StreamCondition::PolicyViolation},
        {"<starttls xmlns='jabber:client'/>", StreamCondition::InvalidNamespace},
        {"<starttls/>", StreamCondition::InvalidNamespace},
        {"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><auth/>", StreamCondition::PolicyViolation},
        {"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><x/></starttls>", StreamCondition::PolicyViolation},
        {"<!-- hi -->", StreamCondition::RestrictedXml},
        {"<?pi?>", StreamCondition::RestrictedXml},
        {"hello", StreamCondition::NotWellFormed},
        {"<starttls xmlns=urn:ietf:params:xml:ns:xmpp-tls/>", StreamCondition::NotWellFormed},
    };
    for (const auto& c : cases) {
        INFO(c.in);
        StartTlsReader r;
        CHECK(r.feed(c.in) == StartTlsStatus::Reject);
        CHECK(r.condition() == c.c);
        CHECK_FALSE(r.detail().empty());
    }
}

TEST_CASE("bytes after <starttls/> and before <proceed/> are refused, even in a later read",
          "[starttls]") {
    StartTlsReader r;
    REQUIRE(r.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") == StartTlsStatus::Proceed);
    CHECK(r.feed("\x16\x03\x01") == StartTlsStatus::Reject);
    CHECK(r.condition() == StreamCondition::PolicyViolation);
    StartTlsReader same_read;
    CHECK(same_read.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n<auth/>") ==
          StartTlsStatus::Reject);
    StartTlsReader after_space;
    REQUIRE(after_space.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> ") == StartTlsStatus::Proceed);
    CHECK(after_space.feed("\t x") == StartTlsStatus::Reject);
}

TEST_CASE("whitespace after <starttls/> is accepted in any split (go-xmpp sends a newline)",
          "[starttls]") {
    const std::string elem = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    for (std::string tail : {"\n", " ", "\r\n", "\t \n", " \n \n"}) {
        std::string in = elem + tail;
        INFO(in);
        for (std::size_t cut = 0; cut <= in.size(); ++cut) {
            StartTlsReader r;
            r.feed(std::string_view(in).substr(0, cut));
            CHECK(r.feed(std::string_view(in).substr(cut)) == StartTlsStatus::Proceed);
        }
        std::mt19937 rng(11);
        for (int k = 0; k < 20; ++k) {
            StartTlsReader r;
            CHECK(feed_split(in, rng, r) == StartTlsStatus::Proceed);
        }
    }
    StartTlsReader many;
    REQUIRE(many.feed(elem) == StartTlsStatus::Proceed);
    CHECK(many.feed(std::string(StartTlsReader::kMaxBytes + 1, '\n')) == StartTlsStatus::Reject);
}

TEST_CASE("after <proceed/>, whitespace before the ClientHello is dropped, then bytes pass unchanged",
          "[starttls]") {
    StartTlsReader r;
    REQUIRE(r.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") == StartTlsStatus::Proceed);
    CHECK(r.tls_bytes("\n") == "");
    CHECK(r.tls_bytes("") == "");
    CHECK(r.tls_bytes(" \r\n\x16\x03\x01") == "\x16\x03\x01");
    CHECK(r.tls_bytes(" \x16") == " \x16");  // past the first TLS byte nothing is dropped
}

TEST_CASE("the reader is bounded", "[starttls]") {
    StartTlsReader r;
    std::string spaces(StartTlsReader::kMaxBytes + 10, ' ');
    CHECK(r.feed(spaces) == StartTlsStatus::Reject);
    StartTlsReader r2;
    std::string big = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls' a='" + std::string(2000, 'x');
    CHECK(r2.feed(big) == StartTlsStatus::Reject);
    CHECK(r2.condition() == StreamCondition::PolicyViolation);
}

TEST_CASE("details quote only ASCII names (they are logged and sent back in <text/>)", "[starttls]") {
    StartTlsReader c1;
    REQUIRE(c1.feed("<st\xC2\x82x/>") == StartTlsStatus::Reject);
    CHECK(c1.detail() == "<(a non-ASCII name)/> before STARTTLS (TLS is required)");
    StartTlsReader bad_utf8;
    REQUIRE(bad_utf8.feed("<starttls a\xff b/>") == StartTlsStatus::Reject);
    CHECK(bad_utf8.detail() == "expected '=' after (a non-ASCII name)");
    StartTlsReader ascii;
    REQUIRE(ascii.feed("<message/>") == StartTlsStatus::Reject);
    CHECK(ascii.detail() == "<message/> before STARTTLS (TLS is required)");
}
