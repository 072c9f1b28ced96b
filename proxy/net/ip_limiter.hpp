// Per-source-address connection rate limit of one listener (token bucket per address), shared
// by every worker: SO_REUSEPORT spreads one address's connections over all of them. One short
// lock per accepted connection; idle addresses are forgotten.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace xs::net {

class IpRateLimiter {
public:
    IpRateLimiter(double rate, unsigned burst);
    bool allow(const sockaddr* addr, uint64_t now_ms);
    std::size_t tracked() const;

private:
    struct Bucket {
        double tokens;
        uint64_t last_ms;
    };
    double rate_;
    double burst_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Bucket> buckets_;
    uint64_t last_prune_ms_ = 0;
};

}  // namespace xs::net
