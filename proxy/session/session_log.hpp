// One line per ended session (client address, domain, route, backend, duration, bytes, reason),
// key=value or JSON. Quiet at high rates: at most `routine_rate` routine lines per second per
// worker; error lines (refusals, resets, timeouts) up to kErrorRate per second; whatever is
// dropped is counted and reported in a summary line, so errors are never dropped silently.
#pragma once
#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace xs::session {

struct SessionLogEntry {
    const sockaddr* client = nullptr;  // AF_UNSPEC or null: unknown
    std::string_view listener, domain, route, backend, reason, condition;
    uint64_t duration_ms = 0, bytes_to_backend = 0, bytes_to_client = 0;
    bool error = false;
};

class SessionLog {
public:
    static constexpr unsigned kErrorRate = 200;

    SessionLog(config::LogFormat format, unsigned routine_rate)
        : format_(format), routine_rate_(routine_rate) {}
    void configure(config::LogFormat format, unsigned routine_rate) {
        format_ = format;
        routine_rate_ = routine_rate;
    }
    void write(const SessionLogEntry& e, uint64_t now_ms);
    void flush_summary(uint64_t now_ms);  // housekeeping: report what was dropped

    std::string format(const SessionLogEntry& e) const;  // the line itself (tests, debugging)

private:
    void roll(uint64_t now_ms);

    config::LogFormat format_;
    unsigned routine_rate_;
    uint64_t window_ms_ = 0;
    unsigned routine_ = 0, errors_ = 0;
    uint64_t dropped_routine_ = 0, dropped_errors_ = 0;
    uint64_t dropped_since_ms_ = 0;
};

}  // namespace xs::session
