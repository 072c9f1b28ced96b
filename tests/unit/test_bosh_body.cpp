// routing/bosh_body: the root <body/> of BOSH requests and session-creation responses.
#include <catch2/catch.hpp>
#include <string>

#include "http_support.hpp"
#include "routing/bosh_body.hpp"

using namespace xs::routing;

namespace {

std::string bosh_outcome(const std::vector<std::string_view>& pieces, std::size_t max = 4096) {
    BoshBodyReader r(max);
    for (auto p : pieces)
        if (r.feed(p) != r.status()) return "feed() disagrees with status()";
    std::string s = std::to_string(static_cast<int>(r.status())) + " seen=" + std::to_string(r.bytes_seen()) +
                    " " + r.detail();
    if (r.status() == BoshStatus::Done) {
        const auto& b = r.body();
        s += " to=" + std::to_string(b.has_to) + b.to + " sid=" + std::to_string(b.has_sid) + b.sid +
             " rid=" + std::to_string(b.has_rid) + b.rid + " consumed=" + std::to_string(b.consumed);
    }
    return s;
}

void require_split_invariant(const std::string& in) {
    xs::test::for_each_split(
        in, [](const std::vector<std::string_view>& p) { return bosh_outcome(p); },
        [](const std::string& whole, const std::string& split) { REQUIRE(split == whole); });
}

BoshBody done(const std::string& in) {
    BoshBodyReader r;
    r.feed(in);
    INFO(r.detail());
    REQUIRE(r.status() == BoshStatus::Done);
    return r.body();
}

std::string rejected(const std::string& in) {
    BoshBodyReader r;
    r.feed(in);
    INFO(in);
    REQUIRE(r.status() == BoshStatus::Reject);
    return r.detail();
}

}  // namespace

TEST_CASE("bosh: strophe.js session request, every split", "[bosh]") {
    const std::string& in = xs::test::kStropheBody;
    auto b = done(in);
    CHECK(b.has_to);
    CHECK(b.to == "meet.example.com");
    CHECK(b.has_rid);
    CHECK(b.rid == "3427615023");
    CHECK_FALSE(b.has_sid);
    CHECK(b.consumed == in.size());
    require_split_invariant(in);
}

TEST_CASE("bosh: later requests carry sid; references decoded; quotes either way", "[bosh]") {
    const std::string in = "<?xml version='1.0'?>\n<body rid=\"3427615024\" sid='a&amp;b&#x41;&#66;' "
                           "xmlns=\"http://jabber.org/protocol/httpbind\"><message to='x'/></body>";
    auto b = done(in);
    CHECK(b.sid == "a&bAB");
    CHECK(b.rid == "3427615024");
    CHECK_FALSE(b.has_to);
    CHECK(b.consumed == in.find("><message") + 1);
    require_split_invariant(in);
    auto p = done("\xEF\xBB\xBF<b:body xmlns:b='http://jabber.org/protocol/httpbind' to='a\tb'/>");
    CHECK(p.to == "a b");
}

TEST_CASE("bosh: response sid", "[bosh]") {
    const std::string resp = "<body xmlns='http://jabber.org/protocol/httpbind' sid='SomeSID' wait='60' "
                             "requests='2' inactivity='30' maxpause='120' polling='2' ver='1.11' from='meet.jitsi' "
                             "secure='true' authid='x' xmlns:xmpp='urn:xmpp:xbosh' xmlns:stream="
                             "'http://etherx.jabber.org/streams' xmpp:version='1.0'><stream:features/></body>";
    CHECK(bosh_response_sid(resp) == std::optional<std::string>("SomeSID"));
    CHECK_FALSE(bosh_response_sid("<body xmlns='http://jabber.org/protocol/httpbind'/>"));
    CHECK_FALSE(bosh_response_sid("<html>"));
    CHECK_FALSE(bosh_response_sid("<body xmlns='http://jabber.org/protocol/httpbind' sid='x'"));
}

TEST_CASE("bosh: refusals", "[bosh]") {
    const char* cases[] = {
        "<body to='a'/>",                                                        // no namespace
        "<body xmlns='jabber:client' to='a'/>",                                  // wrong namespace
        "<b:body xmlns='http://jabber.org/protocol/httpbind'/>",                 // prefix unbound
        "<stream:stream xmlns='http://jabber.org/protocol/httpbind'>",          // another element
        "<body xmlns='http://jabber.org/protocol/httpbind' to='a' to='b'/>",    // duplicate
        "<body xmlns='http://jabber.org/protocol/httpbind' to='a<b'/>",
        "<body xmlns='http://jabber.org/protocol/httpbind' to='&foo;'/>",
        "<body xmlns='http://jabber.org/protocol/httpbind' to='&#0;'/>",
        "<body xmlns='http://jabber.org/protocol/httpbind' sid='&#10;'/>",
        "<body xmlns='http://jabber.org/protocol/httpbind' rid='1\x01'/>",
        "<body xmlns='http://jabber.org/protocol/httpbind' to='a'rid='1'/>",    // no whitespace
        "<body xmlns='http://jabber.org/protocol/httpbind' to=a/>",
        "<body xmlns='http://jabber.org/protocol/httpbind' / >",
        "<!DOCTYPE body><body xmlns='http://jabber.org/protocol/httpbind'/>",
        "<!-- c --><body xmlns='http://jabber.org/protocol/httpbind'/>",
        " <?xml version='1.0'?><body xmlns='http://jabber.org/protocol/httpbind'/>",
        "<?xml version='1.0'?><?pi x?><body xmlns='http://jabber.org/protocol/httpbind'/>",
        "<?xm a<b?><body xmlns='http://jabber.org/protocol/httpbind'/>",            // a PI, not the declaration
        "<?xml-stylesheet href='a'?><body xmlns='http://jabber.org/protocol/httpbind'/>",
        "<?XML version='1.0'?><body xmlns='http://jabber.org/protocol/httpbind'/>",
        "GET / HTTP/1.1\r\n",
        "x<body xmlns='http://jabber.org/protocol/httpbind'/>",
        "\xEF\xBB<body/>",
        "<body% xmlns='http://jabber.org/protocol/httpbind'/>",
    };
    for (const char* c : cases) {
        INFO(c);
        CHECK(rejected(c).find("(at byte ") != std::string::npos);
        require_split_invariant(c);
    }
    // A leading "<?" that is not "<?xml" + whitespace is a processing instruction, refused as one
    // (and not read as a malformed declaration).
    for (const char* pi : {"<?xm a<b?><body/>", "<?xml-stylesheet href='a'?><body/>", "\xEF\xBB\xBF<?xmlx?>"}) {
        INFO(pi);
        CHECK(rejected(pi).find("processing instruction other than a leading XML declaration") == 0);
    }
    BoshBodyReader small(64);
    small.feed("<body xmlns='http://jabber.org/protocol/httpbind' to='" + std::string(1 << 20, 'a'));
    CHECK(small.status() == BoshStatus::Reject);
    CHECK(small.bytes_seen() == 64);
}
