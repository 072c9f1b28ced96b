#include "net/ip_limiter.hpp"

#include <netinet/in.h>

#include <algorithm>

namespace xs::net {

IpRateLimiter::IpRateLimiter(double rate, unsigned burst)
    : rate_(rate), burst_(burst > 0 ? burst : std::max(1.0, 2 * rate)) {}

bool IpRateLimiter::allow(const sockaddr* addr, uint64_t now_ms) {
    std::string key;
    if (addr->sa_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(addr);
        key.assign(reinterpret_cast<const char*>(&a->sin_addr), sizeof a->sin_addr);
    } else if (addr->sa_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
        key.assign(reinterpret_cast<const char*>(&a->sin6_addr), sizeof a->sin6_addr);
    } else {
        return true;
    }
    std::lock_guard<std::mutex> g(mu_);
    // Workers pass their own loop's time, which may be a little behind the last one seen: such a
    // time counts as no time passed (it used to wrap around, refill or forget the bucket).
    auto since = [now_ms](uint64_t then) { return now_ms > then ? now_ms - then : 0; };
    // Forget addresses whose bucket has refilled: they behave as new ones anyway.
    uint64_t refill_ms = static_cast<uint64_t>(burst_ / rate_ * 1000) + 1;
    if (since(last_prune_ms_) > std::max<uint64_t>(refill_ms, 10'000)) {
        last_prune_ms_ = now_ms;
        for (auto it = buckets_.begin(); it != buckets_.end();)
            it = since(it->second.last_ms) > refill_ms ? buckets_.erase(it) : std::next(it);
    }
    auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now_ms});
    Bucket& b = it->second;
    if (!fresh) {
        b.tokens = std::min(burst_, b.tokens + static_cast<double>(since(b.last_ms)) * rate_ / 1000);
        b.last_ms = std::max(b.last_ms, now_ms);
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
}

std::size_t IpRateLimiter::tracked() const {
    std::lock_guard<std::mutex> g(mu_);
    return buckets_.size();
}

}  // namespace xs::net
