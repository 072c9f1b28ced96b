#include "routing/xml_chars.hpp"

namespace xs::routing::xml {

bool is_name_start_cp(std::uint32_t cp) {
    return (cp >= 0xC0 && cp <= 0xD6) || (cp >= 0xD8 && cp <= 0xF6) ||
           (cp >= 0xF8 && cp <= 0x2FF) || (cp >= 0x370 && cp <= 0x37D) ||
           (cp >= 0x37F && cp <= 0x1FFF) || (cp >= 0x200C && cp <= 0x200D) ||
           (cp >= 0x2070 && cp <= 0x218F) || (cp >= 0x2C00 && cp <= 0x2FEF) ||
           (cp >= 0x3001 && cp <= 0xD7FF) || (cp >= 0xF900 && cp <= 0xFDCF) ||
           (cp >= 0xFDF0 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0xEFFFF);
}

bool is_name_char_cp(std::uint32_t cp) {
    return is_name_start_cp(cp) || cp == 0xB7 || (cp >= 0x300 && cp <= 0x36F) ||
           (cp >= 0x203F && cp <= 0x2040);
}

bool is_xml_char(std::uint32_t cp) {
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
           (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

std::string describe(unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    if (c >= 0x21 && c <= 0x7E) return std::string("'") + char(c) + "'";
    return std::string("byte 0x") + kHex[c >> 4] + kHex[c & 0xF];
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

std::string escape_controls(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    auto escape = [&](std::string& out, unsigned cp) {
        out += "\\u00";
        out += kHex[cp >> 4];
        out += kHex[cp & 0xF];
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) {
            escape(out, c);
        } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
            escape(out, static_cast<unsigned char>(s[++i]));  // U+0080..U+009F is C2 80..C2 9F
        } else {
            if (c == '\\') out += '\\';
            out += char(c);
        }
    }
    return out;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::optional<QName> split_qname(std::string_view q) {
    auto starts_ok = [](std::string_view part) {
        auto c = static_cast<unsigned char>(part[0]);
        return c >= 0x80 || (is_name_start(c) && c != ':');
    };
    QName out{{}, q};
    if (auto colon = q.find(':'); colon != std::string_view::npos) {
        if (q.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
        out = {q.substr(0, colon), q.substr(colon + 1)};
        if (out.prefix.empty() || !starts_ok(out.prefix)) return std::nullopt;
    }
    if (out.local.empty() || !starts_ok(out.local)) return std::nullopt;
    return out;
}

}  // namespace xs::routing::xml
