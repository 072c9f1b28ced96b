// What a session starts with: the immutable configuration and the runtime state the daemon
// attached to it (health and admission per backend, rate limiters per listener). The daemon
// builds a new pair on every reload; runtime objects are shared across reloads by name.
#pragma once
#include <memory>
#include <vector>

#include "config/config.hpp"

namespace xs::upstream {
class BackendState;
class BoshSessions;
}
namespace xs::net {
class IpRateLimiter;
}

namespace xs::session {

struct Runtime {
    // Same order as Config::backends.
    std::vector<std::shared_ptr<upstream::BackendState>> states;
    // Same order as Config::listeners; null where the listener has no per-address rate.
    std::vector<std::shared_ptr<net::IpRateLimiter>> limiters;
    // BOSH sessions seen created (sid -> backend), for http listeners; null in tests without.
    std::shared_ptr<upstream::BoshSessions> bosh;
};

struct Snapshot {
    std::shared_ptr<const config::Config> cfg;
    std::shared_ptr<const Runtime> rt;
};

}  // namespace xs::session
