// The requested name (stream 'to', SNI) -> normalised domain -> route and candidates, or why
// not. Shared by the session (routing) and the STARTTLS door (which refuses an unknown host
// before offering TLS).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "routing/route_table.hpp"

namespace xs::session {

struct Lookup {
    std::optional<routing::Decision> decision;  // empty: refuse with host-unknown
    std::string domain;                         // normalised, when valid
    std::string why;                            // when refused
};

// `hash`: what a route with hash_key = "room" ranks its backends by (empty: the domain).
Lookup lookup_route(const config::Config& cfg, const config::ListenerConfig& listener,
                    std::string_view raw, bool has_name, std::string_view hash = {});

}  // namespace xs::session
