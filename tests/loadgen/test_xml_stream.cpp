#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "core/xml_stream.hpp"

using namespace xs::loadgen::xml;

namespace {

std::string canon(const Element& e) {
    std::string s = "<" + e.name;
    for (const auto& [k, v] : e.attrs) s += " " + k + "=[" + v + "]";
    s += ">";
    if (!e.text.empty()) s += "{" + e.text + "}";
    for (const auto& c : e.children) s += canon(c);
    return s + "</>";
}

// Feeds `chunks` one by one, draining events after each; returns them as strings.
std::vector<std::string> run(const std::vector<std::string>& chunks, std::size_t limit = 1 << 20) {
    StreamParser p(limit);
    std::vector<std::string> ev;
    for (const auto& ch : chunks) {
        p.feed(ch);
        while (true) {
            auto e = p.next();
            if (e == StreamParser::Event::None) break;
            if (e == StreamParser::Event::StreamOpen) ev.push_back("open " + canon(p.header()));
            else if (e == StreamParser::Event::Stanza)
                ev.push_back("stanza " + canon(p.stanza()) + " " + std::to_string(p.last_stanza_bytes()));
            else if (e == StreamParser::Event::StreamClose) ev.push_back("close");
            else {
                ev.push_back("error");
                return ev;
            }
        }
    }
    return ev;
}

std::vector<std::string> split_random(const std::string& s, std::mt19937& rng, std::size_t max_piece) {
    std::vector<std::string> out;
    std::uniform_int_distribution<std::size_t> len(1, max_piece);
    for (std::size_t i = 0; i < s.size();) {
        std::size_t n = std::min(len(rng), s.size() - i);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

const std::string kTranscript =
    "<?xml version='1.0'?>"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "id='abc' from=\"meet.test\" version='1.0' xml:lang='en'>"
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
    "<mechanism>PLAIN</mechanism></mechanisms></stream:features>\n \t"
    "<!-- a comment between stanzas -->"
    "<presence from='room@conference.meet.test/p1' to='x@meet.test/r'>"
    "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>"
    "<status code='110'/></x><nick xmlns='http://jabber.org/protocol/nick'>A &amp; B &lt;3 &#x263A;&#65;</nick>"
    "<stats>{\"a\":1,\"b\":\"x>y\"}</stats></presence>"
    "<message type='groupchat' id='m1' from='r@c/p1' title='a>b &quot;q&quot; &apos;s&apos;'>"
    "<body><![CDATA[raw <b>not a tag</b> & co]]> tail</body></message>"
    "<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<jid>user@meet.test/lg1</jid></bind></iq>"
    "<r xmlns='urn:xmpp:sm:3'/>"
    "</stream:stream>";

}  // namespace

TEST_CASE("stream parser: a whole server transcript", "[xml]") {
    auto ev = run({kTranscript});
    REQUIRE(ev.size() == 7);
    CHECK(ev[0].starts_with("open <stream:stream xmlns=[jabber:client]"));
    CHECK(ev[0].find("from=[meet.test]") != std::string::npos);
    CHECK(ev[1].starts_with("stanza <stream:features>"));
    CHECK(ev[2].find("{A & B <3 \xE2\x98\xBA" "A}") != std::string::npos);
    CHECK(ev[2].find("x>y") != std::string::npos);
    CHECK(ev[3].find("title=[a>b \"q\" 's']") != std::string::npos);
    CHECK(ev[3].find("{raw <b>not a tag</b> & co tail}") != std::string::npos);
    CHECK(ev[5] == "stanza <r xmlns=[urn:xmpp:sm:3]></> 26");
    CHECK(ev[6] == "close");
}

TEST_CASE("stream parser: every split of the input gives the same events", "[xml]") {
    auto whole = run({kTranscript});
    // Byte by byte.
    std::vector<std::string> bytes;
    for (char c : kTranscript) bytes.emplace_back(1, c);
    CHECK(run(bytes) == whole);
    // Random splits, small and large pieces.
    std::mt19937 rng(12345);
    for (int round = 0; round < 500; ++round) {
        std::size_t max_piece = round % 2 ? 7 : 97;
        auto pieces = split_random(kTranscript, rng, max_piece);
        INFO("round " << round);
        REQUIRE(run(pieces) == whole);
    }
}

TEST_CASE("stream parser: element helpers", "[xml]") {
    StreamParser p;
    p.feed("<s:stream xmlns:s='http://etherx.jabber.org/streams'>"
           "<presence from='a'><x xmlns='http://jabber.org/protocol/muc#user'>"
           "<status code='110'/></x><x xmlns='other'/></presence>");
    REQUIRE(p.next() == StreamParser::Event::StreamOpen);
    CHECK(p.header().local_name() == "stream");
    REQUIRE(p.next() == StreamParser::Event::Stanza);
    Element& st = p.stanza();
    CHECK(st.attr_or("from") == "a");
    CHECK(st.attr("to") == nullptr);
    CHECK(st.attr_or("to", "dflt") == "dflt");
    const Element* x = st.child("x", "http://jabber.org/protocol/muc#user");
    REQUIRE(x);
    CHECK(x->child("status")->attr_or("code") == "110");
    CHECK(st.child("x", "other") == &st.children[1]);
    CHECK(st.find("status") != nullptr);
    CHECK(st.find("status", "nope") == nullptr);
    CHECK(p.next() == StreamParser::Event::None);
}

TEST_CASE("stream parser: malformed input is an error, and stays one", "[xml]") {
    const char* head = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>";
    auto err = [&](const std::string& body) {
        auto ev = run({std::string(head) + body});
        INFO(body);
        REQUIRE_FALSE(ev.empty());
        CHECK(ev.back() == "error");
    };
    err("<a><b></a>");
    err("</stream:other>");
    err("text at stream level<a/>");
    err("<!DOCTYPE foo>");
    err("<a x='1' x='2'/>");
    err("<a x=1/>");
    err("<a x='&bogus;'/>");
    err("<a>&#0;</a>");
    err("<a x='1'y='2'/>");
    auto ev = run({"<stream:stream/>"});
    CHECK(ev == std::vector<std::string>{"error"});
    // Stays in error.
    StreamParser p;
    p.feed(std::string(head) + "<a></b><c/>");
    CHECK(p.next() == StreamParser::Event::StreamOpen);
    CHECK(p.next() == StreamParser::Event::Error);
    CHECK(p.next() == StreamParser::Event::Error);
    CHECK_FALSE(p.error().empty());
}

TEST_CASE("stream parser: stanza size limit", "[xml]") {
    std::string big = "<stream:stream><message><body>" + std::string(5000, 'x') + "</body></message>";
    CHECK(run({big}, 1000).back() == "error");
    CHECK(run({big}, 100000).size() == 2);
}

TEST_CASE("stream parser: reset starts a new stream (after STARTTLS or SASL)", "[xml]") {
    StreamParser p;
    p.feed("<stream:stream><success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    CHECK(p.next() == StreamParser::Event::StreamOpen);
    CHECK(p.next() == StreamParser::Event::Stanza);
    CHECK(p.stanza().local_name() == "success");
    p.reset();
    p.feed("<?xml version='1.0'?><stream:stream id='2'><stream:features/>");
    CHECK(p.next() == StreamParser::Event::StreamOpen);
    CHECK(p.header().attr_or("id") == "2");
    CHECK(p.next() == StreamParser::Event::Stanza);
    CHECK(p.stanza().name == "stream:features");
}

TEST_CASE("entities and escaping round trip", "[xml]") {
    std::string s = "a<b>&\"c'd";
    CHECK(escape(s) == "a&lt;b&gt;&amp;&quot;c&apos;d");
    std::string back;
    REQUIRE(decode_entities(escape(s), back));
    CHECK(back == s);
    std::string out;
    CHECK(decode_entities("&#x10FFFF;&#233;", out));
    CHECK(out == "\xF4\x8F\xBF\xBF\xC3\xA9");
    out.clear();
    CHECK_FALSE(decode_entities("&#x110000;", out));
    CHECK_FALSE(decode_entities("&amp", out));
    CHECK_FALSE(decode_entities("&#xZZ;", out));
}
