// BOSH sessions the proxy saw created (XEP-0124 `sid` -> the backend that created it), shared
// by every worker: a BOSH request without `?room=` that carries a known sid goes to the backend
// that owns the session, whichever worker or connection it arrives on (a sid lives in one
// Prosody process's memory). An entry lasts `ttl` after the session's last request; the table is
// bounded (when full, expired entries go first, then arbitrary ones). Thread-safe.
#pragma once
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace xs::upstream {

class BoshSessions {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kMaxEntries = 200'000;
    static constexpr std::chrono::seconds kTtl{150};  // above Prosody's bosh_max_inactivity + a held poll

    explicit BoshSessions(std::size_t max_entries = kMaxEntries, Clock::duration ttl = kTtl)
        : max_(max_entries), ttl_(ttl) {}

    // A backend answered a session creation request with this sid.
    void learned(std::string_view sid, std::string_view backend, Clock::time_point now = Clock::now());
    // The backend owning `sid`, if known and not expired; a hit keeps the entry for another ttl.
    std::optional<std::string> owner(std::string_view sid, Clock::time_point now = Clock::now());
    // Known live sessions by backend (the bosh sessions gauge).
    std::map<std::string, std::size_t> per_backend(Clock::time_point now = Clock::now()) const;
    std::size_t size() const;

private:
    struct Entry {
        std::string backend;
        Clock::time_point expires;
    };
    void make_room(Clock::time_point now);

    std::size_t max_;
    Clock::duration ttl_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> by_sid_;
};

}  // namespace xs::upstream
