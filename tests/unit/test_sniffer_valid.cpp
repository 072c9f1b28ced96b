// Stream headers the sniffer must accept, under every split of the input.
#include <catch2/catch.hpp>

#include "sniffer_support.hpp"

using namespace xs::routing;
using xs::test::Outcome;
using xs::test::sniff;
using xs::test::sniff_every_split;

namespace {

const std::string kNs = "xmlns:stream='http://etherx.jabber.org/streams'";

struct Valid {
    std::string name;
    std::string input;
    bool has_to;
    std::string to, content_ns, prefix, version;
    std::string trailing = {};  // bytes after the header, fed too, not consumed
};

const std::vector<Valid>& valid_corpus() {
    static const std::vector<Valid> corpus = {
        {"slixmpp", "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' "
                    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
         true, "example.com", "jabber:client", "stream", "1.0"},
        {"double quotes, full declaration, xml:lang",
         "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
         "<stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" "
         "to=\"Meet.Example.COM.\" version=\"1.0\" xml:lang=\"en\">",
         true, "Meet.Example.COM.", "jabber:client", "stream", "1.0"},
        {"component with an odd prefix",
         "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' "
         "to='focus.meet.example.com'>",
         true, "focus.meet.example.com", "jabber:component:accept", "s", ""},
        {"unprefixed root", "<stream xmlns='http://etherx.jabber.org/streams' to='example.com'>",
         true, "example.com", "", "", ""},
        {"whitespace everywhere",
         " \r\n\t<stream:stream\n\tto = \"a.example.com\"\r\n xmlns:stream =\t'http://etherx.jabber."
         "org/streams'   xmlns\n=\"jabber:client\"  version\t= '1.0' \n>",
         true, "a.example.com", "jabber:client", "stream", "1.0"},
        {"BOM, declaration with every pseudo-attribute and spaces",
         "\xEF\xBB\xBF<?xml  version = '1.0'  encoding = 'utf-8'  standalone = 'yes'  ?>"
         "<stream:stream " + kNs + " xmlns='jabber:client' to='example.com'>",
         true, "example.com", "jabber:client", "stream", ""},
        {"BOM without declaration", "\xEF\xBB\xBF<stream:stream " + kNs + " to='example.com'>",
         true, "example.com", "", "stream", ""},
        {"declaration then whitespace", "<?xml version='1.1'?>\n\n  <stream:stream " + kNs + ">",
         false, "", "", "stream", ""},
        {"attributes in any order, namespace declared last",
         "<stream:stream version='1.0' to='example.com' from='u@example.com' id='x' "
         "xmlns='jabber:client' " + kNs + ">",
         true, "example.com", "jabber:client", "stream", "1.0"},
        {"header followed by more bytes",
         "<stream:stream " + kNs + " xmlns='jabber:client' to='example.com' version='1.0'>",
         true, "example.com", "jabber:client", "stream", "1.0",
         "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"},
        {"comment after the header is not the sniffer's business",
         "<stream:stream " + kNs + ">", false, "", "", "stream", "", "<!-- later --><?pi?>\x01"},
        {"entity and character references decoded",
         "<stream:stream " + kNs + " to='ex&#97;m&#x70;le&#x2E;com&amp;&lt;&gt;&quot;&apos;'>",
         true, "example.com&<>\"'", "", "stream", ""},
        {"non-ASCII to", "<stream:stream " + kNs + " to='b\xC3\xBC" "cher.example'>", true,
         "b\xC3\xBC" "cher.example", "", "stream", ""},
        {"four-byte UTF-8 reference and literal", "<stream:stream " + kNs +
                                                      " to='&#x1F600;\xF0\x9F\x98\x80'>",
         true, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80", "", "stream", ""},
        {"'>' and the other quote inside values",
         "<stream:stream " + kNs + " id=\"a>b'c\" to='x\"y>'>", true, "x\"y>", "", "stream", ""},
        {"attribute-value normalisation",
         "<stream:stream " + kNs + " to='a\tb\nc\r\nd\re&#10;f'>", true, "a b c d e\nf", "",
         "stream", ""},
        {"other prefixed attributes bound on the root",
         "<stream:stream " + kNs + " xmlns:db='jabber:server:dialback' db:x='1' xml:lang='de' "
         "xmlns:xml='http://www.w3.org/XML/1998/namespace'>",
         false, "", "", "stream", ""},
        {"non-ASCII prefix", "<\xC3\xBC:stream xmlns:\xC3\xBC='http://etherx.jabber.org/streams' "
                             "xmlns='jabber:client'>",
         false, "", "jabber:client", "\xC3\xBC", ""},
        {"empty to", "<stream:stream " + kNs + " to=''>", true, "", "", "stream", ""},
        {"prefixed 'to' is not the stream's to",
         "<stream:stream " + kNs + " stream:to='x.example'>", false, "", "", "stream", ""},
    };
    return corpus;
}

}  // namespace

TEST_CASE("sniffer accepts the valid corpus under every split", "[sniffer]") {
    for (const Valid& v : valid_corpus()) {
        SECTION(v.name) {
            Outcome o = sniff_every_split(v.input + v.trailing);
            INFO(o);
            REQUIRE(o.status == SniffStatus::Done);
            CHECK(o.has_to == v.has_to);
            CHECK(o.to == v.to);
            CHECK(o.content_ns == v.content_ns);
            CHECK(o.prefix == v.prefix);
            CHECK(o.version == v.version);
            CHECK(o.consumed == v.input.size());
            CHECK(o.seen == v.input.size());
        }
    }
}

TEST_CASE("sniffer says NeedMore on every proper prefix of a valid header", "[sniffer]") {
    const std::string h = valid_corpus().front().input;
    for (std::size_t n = 0; n < h.size(); ++n) {
        INFO("prefix length " << n);
        StreamHeaderSniffer s;
        CHECK(s.feed(std::string_view(h).substr(0, n)) == SniffStatus::NeedMore);
        CHECK(s.bytes_seen() == n);
    }
}

TEST_CASE("sniffer ignores bytes fed after Done", "[sniffer]") {
    const std::string h = "<stream:stream " + kNs + " to='example.com'>";
    StreamHeaderSniffer s;
    REQUIRE(s.feed(h) == SniffStatus::Done);
    CHECK(s.feed("<garbage & more <!-- -->") == SniffStatus::Done);
    CHECK(s.feed("\x16\x03") == SniffStatus::Done);
    CHECK(s.header().to == "example.com");
    CHECK(s.header().consumed == h.size());
    CHECK(s.bytes_seen() == h.size());
}

TEST_CASE("sniffer accepts an empty feed as NeedMore", "[sniffer]") {
    StreamHeaderSniffer s;
    CHECK(s.feed("") == SniffStatus::NeedMore);
    CHECK(s.status() == SniffStatus::NeedMore);
    CHECK(s.bytes_seen() == 0);
}

TEST_CASE("max_header_bytes: a header ending exactly at the limit is accepted", "[sniffer]") {
    // The limit counts everything from the first byte (BOM and declaration included).
    const std::string head = "\xEF\xBB\xBF<?xml version='1.0'?><stream:stream " + kNs + " pad='";
    const std::string tail = "' to='example.com'>";
    for (std::size_t max : {std::size_t(128), std::size_t(4096)}) {
        std::string h = head + std::string(max - head.size() - tail.size(), 'x') + tail;
        REQUIRE(h.size() == max);
        SECTION("max " + std::to_string(max)) {
            Outcome at_limit = sniff_every_split(h, max);
            CHECK(at_limit.status == SniffStatus::Done);
            CHECK(at_limit.consumed == max);

            // One byte over: rejected as soon as byte number max is read and is not the '>'.
            std::string over = head + "y" + h.substr(head.size());
            Outcome o = sniff_every_split(over, max);
            CHECK(o.status == SniffStatus::Reject);
            CHECK(o.condition == StreamCondition::PolicyViolation);
            CHECK(o.seen == max);
            CHECK(sniff(std::string_view(over).substr(0, max), max) == o);
            CHECK(sniff(std::string_view(over).substr(0, max - 1), max).status ==
                  SniffStatus::NeedMore);
        }
    }
}

TEST_CASE("max_header_bytes: endless whitespace or attributes are cut off", "[sniffer]") {
    Outcome ws = sniff(std::string(5000, ' '));
    CHECK(ws.status == SniffStatus::Reject);
    CHECK(ws.condition == StreamCondition::PolicyViolation);
    CHECK(ws.seen == 4096);

    std::string attrs = "<stream:stream " + kNs;
    for (int i = 0; attrs.size() < 5000; ++i) attrs += " a" + std::to_string(i) + "='v'";
    Outcome a = sniff(attrs);
    CHECK(a.status == SniffStatus::Reject);
    CHECK(a.condition == StreamCondition::PolicyViolation);
    CHECK(a.seen == 4096);
    CHECK_FALSE(a.detail.empty());

    // An earlier verdict inside the limit wins over the size.
    Outcome early = sniff("<!DOCTYPE" + std::string(5000, ' '), 8);
    CHECK(early.condition == StreamCondition::RestrictedXml);
    CHECK(early.seen == 2);
}
