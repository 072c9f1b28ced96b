// The sniffer's detail is logged raw, so it must stay valid UTF-8 without control characters
// even when it quotes a client's decoded value: C0 controls, DEL and C1 controls are written
// \u00xx and a backslash is doubled (stream_header_sniffer.hpp, detail()).
#include <catch2/catch.hpp>

#include <string>

#include "routing/xml_chars.hpp"
#include "sniffer_support.hpp"

using namespace xs::routing;
using xs::test::Outcome;
using xs::test::sniff_every_split;

namespace {

const std::string kTail = "' is not http://etherx.jabber.org/streams";

// The detail for <s:stream xmlns:s='VALUE'>, which quotes the decoded VALUE.
std::string detail_for_ns(const std::string& value) {
    const std::string in = "<s:stream xmlns:s='" + value + "'>";
    Outcome o = sniff_every_split(in);
    INFO(o);
    REQUIRE(o.status == SniffStatus::Reject);
    CHECK(o.condition == StreamCondition::InvalidNamespace);
    return o.detail;
}

// No byte below 0x20, no DEL, no C2 80..C2 9F (U+0080..U+009F).
bool free_of_controls(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) return false;
        if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0)
            return false;
    }
    return true;
}

}  // namespace

TEST_CASE("escape_controls: controls as \\u00xx, backslash doubled, the rest kept",
          "[sniffer][detail]") {
    using xml::escape_controls;
    CHECK(escape_controls("plain 'text' <x/>") == "plain 'text' <x/>");
    CHECK(escape_controls(std::string("a\0b", 3)) == "a\\u0000b");
    CHECK(escape_controls("a\nb\rc\td\x1f") == "a\\u000ab\\u000dc\\u0009d\\u001f");
    CHECK(escape_controls("del\x7f") == "del\\u007f");
    CHECK(escape_controls("\xc2\x80|\xc2\x82|\xc2\x9f") == "\\u0080|\\u0082|\\u009f");
    CHECK(escape_controls("back\\slash") == "back\\\\slash");
    CHECK(escape_controls("\\u000a") == "\\\\u000a");  // not confused with an escape
    // Printable non-ASCII stays as it is: NBSP, e-acute, a CJK character, an emoji.
    const std::string kept = "\xc2\xa0 \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80";
    CHECK(escape_controls(kept) == kept);
}

TEST_CASE("a newline from a character reference is escaped in the detail", "[sniffer][detail]") {
    // tests/fuzz/regressions/fuzz_stream_header/detail-newline-from-reference
    CHECK(detail_for_ns("a&#10;b") == "root namespace 'a\\u000ab" + kTail + " (at byte 28)");
    CHECK(detail_for_ns("a&#xD;&#x9;b") ==
          "root namespace 'a\\u000d\\u0009b" + kTail + " (at byte 33)");
}

TEST_CASE("C1 controls and DEL are escaped in the detail", "[sniffer][detail]") {
    // detail-c1-control-from-reference: &#x82; in the root's namespace.
    CHECK(detail_for_ns("x&#x82;y") == "root namespace 'x\\u0082y" + kTail + " (at byte 29)");
    // Literal ones too: a value may hold DEL and U+0080..U+009F as they are.
    CHECK(detail_for_ns("x\x7fy\xc2\x85z") ==
          "root namespace 'x\\u007fy\\u0085z" + kTail + " (at byte 27)");
    CHECK(detail_for_ns("&#127;&#159;&#160;") ==
          "root namespace '\\u007f\\u009f\xc2\xa0" + kTail + " (at byte 39)");
}

TEST_CASE("a backslash in a quoted value is doubled", "[sniffer][detail]") {
    CHECK(detail_for_ns("a\\u000ab") == "root namespace 'a\\\\u000ab" + kTail + " (at byte 29)");
}

TEST_CASE("every character reference gives a detail free of controls", "[sniffer][detail]") {
    for (std::uint32_t cp = 1; cp < 0x300; ++cp) {
        if (!xml::is_xml_char(cp)) continue;
        StreamHeaderSniffer s;
        s.feed("<s:stream xmlns:s='&#" + std::to_string(cp) + ";'>");
        INFO("code point " << cp << ", detail: " << s.detail());
        REQUIRE(s.status() == SniffStatus::Reject);
        CHECK(free_of_controls(s.detail()));
    }
}
