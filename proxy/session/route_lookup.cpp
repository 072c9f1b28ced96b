#include "session/route_lookup.hpp"

#include "routing/domain.hpp"

namespace xs::session {

Lookup lookup_route(const config::Config& cfg, const config::ListenerConfig& listener,
                    std::string_view raw, bool has_name, std::string_view hash) {
    Lookup out;
    if (!has_name) {
        out.why = "no 'to' (or no SNI)";
        return out;
    }
    std::string why;
    auto domain = routing::normalize_domain(raw, &why);
    if (!domain) {
        out.why = "invalid domain: " + why;
        return out;
    }
    out.domain = std::move(*domain);
    out.decision = cfg.routes->lookup(listener.name, out.domain, hash);
    if (!out.decision) out.why = "no route for this domain";
    return out;
}

}  // namespace xs::session
