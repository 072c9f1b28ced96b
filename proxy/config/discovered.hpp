// Backends discovered by DNS SRV, folded into a configuration. A backend with `srv` is a group;
// its members (one per SRV target) become backends of their own, named by their targets, and
// every route naming the group names its members instead. Pure: the DNS side lives in
// upstream/srv_resolver and app/discovery; this only builds the Config the workers see.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace xs::config {

struct SrvRecord {
    std::string target;  // as answered (a final dot is allowed)
    uint16_t port = 0;
    uint16_t priority = 0;
    uint16_t weight = 0;
};

// One discovered backend.
struct Member {
    std::string name;          // member_names()
    std::string address_text;  // "IP:PORT" (what health-check identity and logs show)
    SocketAddress address;
    uint16_t priority = 0;     // failover routes: lower first, then higher weight, then name
    uint16_t weight = 0;
};

// Group name -> its members (any order). A group absent or empty has no member.
using Discovered = std::map<std::string, std::vector<Member>>;

// The members' names, same order as `records`: the target in lower case without its final dot,
// so every replica given the same answer names (and so ranks) backends alike; a target that
// comes with several ports is named "target:port" for each.
std::vector<std::string> member_names(const std::vector<SrvRecord>& records);

struct Expanded {
    std::shared_ptr<const Config> config;  // null when the routes do not compile (see notes)
    std::vector<std::string> notes;        // members left out and why
};

// `base` as loaded (groups unexpanded) + what DNS said -> the configuration to run. A group
// with no member yet stays one drained backend under its own name (no address), so that its
// routes compile and refuse sessions cleanly until an answer comes. A member whose name is
// taken by another backend is left out (noted).
Expanded expand_discovered(const Config& base, const Discovered& found);

// True when `cfg` has any `srv` group.
bool has_discovery(const Config& cfg);

}  // namespace xs::config
