// DNS SRV lookups with the A/AAAA addresses of every target, on a libuv loop through c-ares
// (never a blocking resolver on a loop): c-ares's sockets are watched with uv_poll handles and
// its timeouts with a uv_timer. One resolver serves any number of lookups; loop thread only.
#pragma once
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/discovered.hpp"

namespace xs::upstream {

struct SrvTarget {
    config::SrvRecord record;
    std::vector<config::SocketAddress> addresses;  // in the resolver's order; empty: see error
    std::string error;                             // why the target has no address
};

struct SrvAnswer {
    bool ok = false;           // the SRV query itself was answered with records
    std::string error;         // when not ok: c-ares's reason ("Domain name not found", ...)
    std::vector<SrvTarget> targets;
    uint32_t ttl = 0;          // the smallest TTL of the SRV records and the targets' addresses
};

// The smallest TTL of the answer section's records of `type` in a DNS message; nullopt when
// the message is malformed or has none. Pure (unit-tested).
std::optional<uint32_t> dns_min_ttl(const unsigned char* msg, std::size_t len, uint16_t type);

class SrvResolver {
public:
    using Done = std::function<void(SrvAnswer)>;
    // servers: c-ares "IP:PORT" items (config::resolver_csv_item); empty: the system's
    // resolver configuration. Null (reason in *err) when c-ares cannot start.
    static SrvResolver* create(uv_loop_t* loop, const std::vector<std::string>& servers, std::string* err);
    // Looks `name` up (with the system's search domains), then every target's addresses;
    // `done` runs on the loop once everything answered or failed.
    void resolve(const std::string& name, Done done);
    // Cancels pending lookups (their `done` is not called) and frees the resolver once its
    // handles are closed. The pointer is invalid afterwards.
    void close();

private:
    struct Impl;
    explicit SrvResolver(Impl* impl) : impl_(impl) {}
    ~SrvResolver() = default;
    Impl* impl_;
};

}  // namespace xs::upstream
