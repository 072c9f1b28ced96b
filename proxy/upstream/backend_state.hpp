// Runtime state of one backend, shared by every worker and the health checker, and kept across
// reloads (by name). Health is atomics; admission (attempts in flight, the new-session rate)
// takes a short mutex once per connection attempt, never per relayed byte.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"

namespace xs::upstream {

class BackendState {
public:
    explicit BackendState(std::string name) : name_(std::move(name)) {}
    const std::string& name() const { return name_; }

    bool up() const { return up_.load(std::memory_order_relaxed); }
    uint32_t consecutive_failures() const { return failures_.load(std::memory_order_relaxed); }
    int64_t sessions() const { return sessions_.load(std::memory_order_relaxed); }
    int64_t connecting() const;

    // Health results; return true when the up/down state changed.
    bool check_passed(unsigned rise);
    bool check_failed(unsigned fall);
    bool mark_down_now();  // passive: a live connection was refused

    // Admission: take a slot for one attempt if max_connecting and max_new_per_second allow.
    bool try_acquire(const config::BackendConfig& cfg, uint64_t now_ms);
    void release();
    void session_started() { sessions_.fetch_add(1, std::memory_order_relaxed); }
    void session_ended() { sessions_.fetch_sub(1, std::memory_order_relaxed); }

private:
    const std::string name_;
    std::atomic<bool> up_{true};
    std::atomic<uint32_t> failures_{0};
    std::atomic<uint32_t> passes_{0};
    std::atomic<int64_t> sessions_{0};
    mutable std::mutex mu_;  // admission
    int64_t connecting_ = 0;
    double tokens_ = -1;     // < 0: bucket not started
    uint64_t last_ms_ = 0;
};

// Name -> state, for the life of the process, so a reload keeps health and counts.
class BackendRegistry {
public:
    std::shared_ptr<BackendState> get(const std::string& name);

private:
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<BackendState>> states_;
};

}  // namespace xs::upstream
