#include "upstream/backend_state.hpp"

#include <algorithm>

namespace xs::upstream {

int64_t BackendState::connecting() const {
    std::lock_guard<std::mutex> g(mu_);
    return connecting_;
}

bool BackendState::check_passed(unsigned rise) {
    failures_.store(0, std::memory_order_relaxed);
    uint32_t passes = passes_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (!up() && passes >= rise) {
        up_.store(true, std::memory_order_relaxed);
        return true;
    }
    return false;
}

bool BackendState::check_failed(unsigned fall) {
    passes_.store(0, std::memory_order_relaxed);
    uint32_t failures = failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (up() && failures >= fall) {
        up_.store(false, std::memory_order_relaxed);
        return true;
    }
    return false;
}

bool BackendState::mark_down_now() {
    passes_.store(0, std::memory_order_relaxed);
    failures_.fetch_add(1, std::memory_order_relaxed);
    return up_.exchange(false, std::memory_order_relaxed);
}

bool BackendState::try_acquire(const config::BackendConfig& cfg, uint64_t now_ms) {
    std::lock_guard<std::mutex> g(mu_);
    if (cfg.max_connecting > 0 && connecting_ >= cfg.max_connecting) return false;
    if (cfg.max_new_per_second > 0) {
        double burst = std::max(1.0, cfg.max_new_per_second / 10);  // at most 100 ms worth at once
        // Workers pass their own loop's time, which may be a little behind the last one seen:
        // such a time adds nothing (it used to wrap around and refill the whole bucket).
        if (tokens_ < 0) tokens_ = burst;
        else if (now_ms > last_ms_)
            tokens_ = std::min(burst, tokens_ + (now_ms - last_ms_) * cfg.max_new_per_second / 1000);
        last_ms_ = std::max(last_ms_, now_ms);
        if (tokens_ < 1) return false;
        tokens_ -= 1;
    }
    ++connecting_;
    return true;
}

void BackendState::release() {
    std::lock_guard<std::mutex> g(mu_);
    if (connecting_ > 0) --connecting_;
}

std::shared_ptr<BackendState> BackendRegistry::get(const std::string& name) {
    std::lock_guard<std::mutex> g(mu_);
    auto& s = states_[name];
    if (!s) s = std::make_shared<BackendState>(name);
    return s;
}

}  // namespace xs::upstream
