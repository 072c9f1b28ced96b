#include "upstream/bosh_sessions.hpp"

namespace xs::upstream {

void BoshSessions::learned(std::string_view sid, std::string_view backend, Clock::time_point now) {
    if (sid.empty() || max_ == 0) return;
    std::lock_guard<std::mutex> g(mu_);
    auto it = by_sid_.find(std::string(sid));
    if (it == by_sid_.end()) {
        if (by_sid_.size() >= max_) make_room(now);
        by_sid_.emplace(std::string(sid), Entry{std::string(backend), now + ttl_});
        return;
    }
    it->second = Entry{std::string(backend), now + ttl_};
}

std::optional<std::string> BoshSessions::owner(std::string_view sid, Clock::time_point now) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = by_sid_.find(std::string(sid));
    if (it == by_sid_.end()) return std::nullopt;
    if (it->second.expires <= now) {
        by_sid_.erase(it);
        return std::nullopt;
    }
    it->second.expires = now + ttl_;
    return it->second.backend;
}

std::map<std::string, std::size_t> BoshSessions::per_backend(Clock::time_point now) const {
    std::map<std::string, std::size_t> out;
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& [sid, e] : by_sid_)
        if (e.expires > now) ++out[e.backend];
    return out;
}

std::size_t BoshSessions::size() const {
    std::lock_guard<std::mutex> g(mu_);
    return by_sid_.size();
}

// Full: drop every expired entry; if none had expired, drop a tenth of the table (arbitrary
// entries: an evicted session's next request without a room falls back to the domain).
void BoshSessions::make_room(Clock::time_point now) {
    std::erase_if(by_sid_, [now](const auto& kv) { return kv.second.expires <= now; });
    std::size_t drop = by_sid_.size() >= max_ ? max_ / 10 + 1 : 0;
    for (auto it = by_sid_.begin(); drop > 0 && it != by_sid_.end(); --drop) it = by_sid_.erase(it);
}

}  // namespace xs::upstream
