#include "routing/domain.hpp"

#include <cstdint>

namespace xs::routing {

namespace {

bool fail(std::string* why, std::string msg) {
    if (why) *why = std::move(msg);
    return false;
}

// Length of the valid UTF-8 sequence (non-ASCII, not overlong, no surrogate, <= U+10FFFF)
// starting at s[i], or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    std::size_t len;
    std::uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return len;
}

bool check_label(std::string_view label, std::string* why) {
    if (label.empty()) return fail(why, "empty label");
    if (label.size() > 63)
        return fail(why, "label '" + std::string(label) + "' longer than 63 bytes");
    if (label.front() == '-' || label.back() == '-')
        return fail(why, "label '" + std::string(label) + "' starts or ends with '-'");
    for (std::size_t i = 0; i < label.size();) {
        auto c = static_cast<unsigned char>(label[i]);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            ++i;
        } else if (c >= 0x80) {
            std::size_t n = utf8_sequence(label, i);
            if (n == 0) return fail(why, "invalid UTF-8");
            i += n;
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            std::string shown = (c > 0x20 && c < 0x7F) ? std::string("'") + char(c) + "'"
                                                       : std::string("byte 0x") + kHex[c >> 4] +
                                                             kHex[c & 0xF];
            return fail(why, "invalid character " + shown);
        }
    }
    return true;
}

}  // namespace

std::optional<std::string> normalize_domain(std::string_view raw, std::string* why) {
    std::string d(raw);
    for (char& c : d)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (!d.empty() && d.back() == '.') d.pop_back();
    if (d.empty()) {
        fail(why, "empty domain");
        return std::nullopt;
    }
    if (d.size() > 253) {
        fail(why, "domain longer than 253 bytes");
        return std::nullopt;
    }
    std::string_view rest = d;
    while (true) {
        auto dot = rest.find('.');
        if (!check_label(rest.substr(0, dot), why)) return std::nullopt;
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    return d;
}

std::optional<DomainPattern> parse_pattern(std::string_view raw, std::string* why) {
    if (raw == "*") return DomainPattern{PatternKind::Any, {}};
    PatternKind kind = PatternKind::Exact;
    if (raw.substr(0, 2) == "*.") {
        kind = PatternKind::Wildcard;
        raw.remove_prefix(2);
    }
    if (raw.find('*') != std::string_view::npos) {
        fail(why, "'*' is only allowed alone or as the first label of \"*.suffix\"");
        return std::nullopt;
    }
    auto d = normalize_domain(raw, why);
    if (!d) return std::nullopt;
    return DomainPattern{kind, std::move(*d)};
}

bool matches(const DomainPattern& p, std::string_view domain) {
    switch (p.kind) {
    case PatternKind::Any:
        return true;
    case PatternKind::Exact:
        return domain == p.text;
    case PatternKind::Wildcard:
        return domain.size() > p.text.size() + 1 && domain.ends_with(p.text) &&
               domain[domain.size() - p.text.size() - 1] == '.';
    }
    return false;
}

}  // namespace xs::routing
