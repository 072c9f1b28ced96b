// Pure parsers for scalar config values (durations, host:port). No toml++ here, so they are
// unit-tested directly.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace xs::config {

// "10s", "500ms", "2m", "1h", "1.5s". Returns nullopt (reason in *why) otherwise.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s, std::string* why);

struct HostPort {
    std::string host;  // without brackets
    unsigned port = 0;
};
// "1.2.3.4:5222", "[::1]:5222", "name:5222"; port 0..65535 (0 only when allow_zero).
std::optional<HostPort> parse_host_port(std::string_view s, bool allow_zero, std::string* why);

}  // namespace xs::config

namespace xs::config {

// A DNS name as SRV names and targets are written: dot-separated labels of letters, digits, '-'
// and '_' (1-63 each, 253 in all), an optional final dot.
bool is_dns_name(std::string_view s);

// A resolver as written ("IP" or "IP:PORT", IPv6 in brackets with a port) -> c-ares's
// "IP:PORT" / "[IP6]:PORT" form (port 53 by default); nullopt (reason in *why) otherwise.
std::optional<std::string> resolver_csv_item(std::string_view s, std::string* why);

}  // namespace xs::config
