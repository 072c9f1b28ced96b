// Internal helpers of the stream header sniffer: XML 1.0 (fifth edition) character classes,
// UTF-8 encoding, qualified names. Not part of the routing API.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xs::routing::xml {

inline constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";
inline constexpr std::string_view kXmlnsNs = "http://www.w3.org/2000/xmlns/";

inline bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
inline bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
inline bool is_hex(unsigned char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
// ASCII part of NameStartChar / NameChar; bytes >= 0x80 are checked per code point below.
inline bool is_name_start(unsigned char c) { return is_alpha(c) || c == '_' || c == ':'; }
inline bool is_name_char(unsigned char c) {
    return is_name_start(c) || is_digit(c) || c == '-' || c == '.';
}

bool is_name_start_cp(std::uint32_t cp);  // non-ASCII NameStartChar
bool is_name_char_cp(std::uint32_t cp);   // non-ASCII NameChar
bool is_xml_char(std::uint32_t cp);       // Char: what a document may contain at all

// "'x'" for printable ASCII, "byte 0xNN" otherwise: safe to log and to echo in <text/>.
std::string describe(unsigned char c);
void append_utf8(std::string& out, std::uint32_t cp);
// For the sniffer's detail: `s` (valid UTF-8) with every C0 control, DEL and C1 control
// (U+0000..U+001F, U+007F, U+0080..U+009F) written as \u00xx (four lower-case hex digits, as in
// JSON) and every backslash doubled, so the result is valid UTF-8 without control characters
// and an escape cannot be confused with the same six characters sent literally.
std::string escape_controls(std::string_view s);
bool iequals_ascii(std::string_view a, std::string_view b);

struct QName {
    std::string_view prefix, local;
};
// Namespaces in XML: at most one colon, both parts non-empty, neither starting with a digit,
// '-' or '.' (non-ASCII starts are checked per code point as they arrive).
std::optional<QName> split_qname(std::string_view q);

}  // namespace xs::routing::xml
