// Small helpers for HTTP header fields, shared by the WebSocket handshake reader and the HTTP
// response reader: case folding, trimming optional whitespace, comma-separated token lists.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace xs::loadgen::http {

inline std::string lower(std::string_view s) {
    std::string o(s);
    for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return o;
}

// Without leading SP/HTAB and trailing SP/HTAB/CR.
inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Calls f with each non-empty comma-separated token of a header value, lower-cased, in order.
template <typename F>
void each_token(std::string_view value, F f) {
    std::string v = lower(value);
    std::size_t i = 0;
    while (i <= v.size()) {
        std::size_t c = v.find(',', i);
        if (c == std::string::npos) c = v.size();
        std::string_view t = trim(std::string_view(v).substr(i, c - i));
        if (!t.empty()) f(t);
        i = c + 1;
    }
}

// Whether the value lists `token` (lower-case) among its comma-separated tokens.
inline bool has_token(std::string_view value, std::string_view token) {
    bool found = false;
    each_token(value, [&](std::string_view t) { found = found || t == token; });
    return found;
}

}  // namespace xs::loadgen::http
