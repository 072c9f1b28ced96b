#include "http_lines.hpp"

#include <utility>

namespace xs::routing::http {

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

static unsigned char lower_c(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower_c(static_cast<unsigned char>(a[i])) != lower_c(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(lower_c(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split_list(std::string_view s) {
    std::vector<std::string_view> out;
    while (true) {
        const std::size_t comma = s.find(',');
        std::string_view item = trim_ows(s.substr(0, comma));
        if (!item.empty()) out.push_back(item);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return out;
}

std::string printable(std::string_view s, std::size_t max) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    const std::size_t n = s.size() < max ? s.size() : max;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7F) {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    if (n < s.size()) out += "...";
    return out;
}

bool parse_decimal(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 18) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

HeadLines::HeadLines(std::size_t max_head_bytes, std::size_t max_fields,
                     std::size_t max_second_field, int second_field_status,
                     bool allow_leading_empty_lines)
    : max_(max_head_bytes ? max_head_bytes : 1),
      max_fields_(max_fields),
      max_second_(max_second_field),
      second_status_(static_cast<std::size_t>(second_field_status)),
      allow_leading_(allow_leading_empty_lines) {}

void HeadLines::fail(int status, std::string_view why) {
    status_ = HeadStatus::Reject;
    reject_status_ = status;
    detail_ = std::string(why) + " (at byte " + std::to_string(seen_) + ")";
    line_.clear();
    line_.shrink_to_fit();
}

HeadStatus HeadLines::feed(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size() && status_ == HeadStatus::NeedMore; ++i)
        step(static_cast<unsigned char>(bytes[i]));
    return status_;
}

void HeadLines::step(unsigned char c) {
    ++seen_;
    if (pending_cr_) {
        pending_cr_ = false;
        if (c != '\n') return fail(400, "CR not followed by LF");
        end_line();
    } else if (c == '\r') {
        pending_cr_ = true;
    } else if (c == '\n') {
        return fail(400, "bare LF (lines must end with CRLF)");
    } else if (c == 0) {
        return fail(400, "NUL byte");
    } else if ((c < 0x20 && c != '\t') || c == 0x7F) {
        return fail(400, "control character " + printable(std::string(1, static_cast<char>(c))));
    } else {
        line_.push_back(static_cast<char>(c));
        if (!in_fields_) {
            if (c == ' ') {
                ++spaces_;
            } else if (spaces_ == 1 && ++second_ > max_second_) {
                return fail(static_cast<int>(second_status_),
                            "request target longer than " + std::to_string(max_second_) +
                                " bytes");
            }
        }
    }
    if (status_ == HeadStatus::NeedMore && seen_ >= max_)
        fail(431, "no complete head within max_head_bytes = " + std::to_string(max_));
}

void HeadLines::end_line() {
    if (!in_fields_) {
        if (line_.empty()) {
            if (!allow_leading_) return fail(400, "empty start line");
            ++leading_;
            return;
        }
        start_line_ = std::move(line_);
        line_.clear();
        in_fields_ = true;
        return;
    }
    if (line_.empty()) {
        status_ = HeadStatus::Done;
        line_.shrink_to_fit();
        return;
    }
    if (line_[0] == ' ' || line_[0] == '\t')
        return fail(400, fields_.empty() ? "whitespace before the first header field"
                                         : "obs-fold (header line starting with whitespace)");
    const std::size_t colon = line_.find(':');
    if (colon == std::string::npos)
        return fail(400, "header line without ':': '" + printable(line_) + "'");
    const std::string_view name = std::string_view(line_).substr(0, colon);
    if (!is_token(name)) {
        const bool ws = !name.empty() && (name.back() == ' ' || name.back() == '\t');
        return fail(400, (ws ? "whitespace between field name and ':': '"
                             : "field name is not a token: '") +
                             printable(name) + "'");
    }
    if (fields_.size() >= max_fields_)
        return fail(431, "more than " + std::to_string(max_fields_) + " header fields");
    HeaderField f;
    f.name = std::string(name);
    f.value = std::string(trim_ows(std::string_view(line_).substr(colon + 1)));
    f.raw = std::move(line_);
    fields_.push_back(std::move(f));
    line_.clear();
}

}  // namespace xs::routing::http
