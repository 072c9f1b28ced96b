#include "config/values.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace xs::config {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s, std::string* why) {
    auto fail = [&](const char* m) -> std::optional<std::chrono::milliseconds> {
        if (why) *why = m;
        return std::nullopt;
    };
    std::size_t i = 0;
    bool digits = false, dot = false;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || (s[i] == '.' && !dot))) {
        if (s[i] == '.') dot = true; else digits = true;
        ++i;
    }
    if (!digits) return fail("expected a duration such as \"10s\", \"500ms\" or \"2m\"");
    double value = std::strtod(std::string(s.substr(0, i)).c_str(), nullptr);
    std::string_view unit = s.substr(i);
    double scale;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else return fail("duration needs a unit: ms, s, m or h (e.g. \"10s\")");
    double ms = value * scale;
    if (ms > 365.0 * 24 * 3'600'000) return fail("duration is too long");
    return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

std::optional<HostPort> parse_host_port(std::string_view s, bool allow_zero, std::string* why) {
    auto fail = [&](const char* m) -> std::optional<HostPort> {
        if (why) *why = m;
        return std::nullopt;
    };
    HostPort hp;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) return fail("missing ']' in IPv6 address");
        hp.host = std::string(s.substr(1, close - 1));
        if (close + 1 >= s.size() || s[close + 1] != ':') return fail("expected \"[ADDRESS]:PORT\"");
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return fail("expected \"HOST:PORT\"");
        hp.host = std::string(s.substr(0, colon));
        if (hp.host.find(':') != std::string::npos)
            return fail("IPv6 addresses need brackets: \"[ADDRESS]:PORT\"");
        port = s.substr(colon + 1);
    }
    if (hp.host.empty()) return fail("missing host before the port");
    if (port.empty() || port.size() > 5) return fail("expected a port number 1-65535");
    unsigned p = 0;
    for (char c : port) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return fail("expected a port number 1-65535");
        p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p > 65535 || (p == 0 && !allow_zero)) return fail("expected a port number 1-65535");
    hp.port = p;
    return hp;
}

}  // namespace xs::config

namespace xs::config {

bool is_dns_name(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    if (s.empty() || s.size() > 253) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == '.') {
            if (label == 0 || label > 63) return false;
            label = 0;
            continue;
        }
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (!std::isalnum(c) && c != '-' && c != '_') return false;
        ++label;
    }
    return true;
}

std::optional<std::string> resolver_csv_item(std::string_view s, std::string* why) {
    in6_addr a6{};
    in_addr a4{};
    std::string text(s);
    if (inet_pton(AF_INET, text.c_str(), &a4) == 1) return text + ":53";
    if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) return "[" + text + "]:53";
    const char* ip_only = "a resolver is an IP address (\"IP\" or \"IP:PORT\"), not a host name";
    auto hp = parse_host_port(s, false, why);
    if (!hp) {
        if (why && s.find(':') == std::string_view::npos) *why = ip_only;
        return std::nullopt;
    }
    if (inet_pton(AF_INET, hp->host.c_str(), &a4) == 1) return hp->host + ":" + std::to_string(hp->port);
    if (inet_pton(AF_INET6, hp->host.c_str(), &a6) == 1)
        return "[" + hp->host + "]:" + std::to_string(hp->port);
    if (why) *why = ip_only;
    return std::nullopt;
}

}  // namespace xs::config
