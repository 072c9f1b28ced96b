// Every metric family the proxy exports, declared in one place, and the scrape: merge every
// worker's statistics with the shared backend state and the daemon's counters into the
// Prometheus text format.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "metrics/worker_stats.hpp"

namespace xs::session {
struct Runtime;
}

namespace xs::metrics {

// One `srv` backend group (app/discovery.hpp).
struct DiscoveryStatus {
    std::string backend;        // the group's name
    std::string srv;
    std::size_t members = 0;    // in the last good set
    double last_success = 0;    // unix time of the last good answer; 0: none yet
    uint64_t successes = 0, failures = 0;
};

// Written by the daemon's thread, read at scrape time.
struct DaemonCounters {
    std::atomic<uint64_t> reloads_success{0};
    std::atomic<uint64_t> reloads_failure{0};
    std::atomic<double> last_reload_success_seconds{0};  // unix time of the last good load
    std::atomic<bool> accepting{true};
    double start_seconds = 0;
    // The discovery groups' state, asked at scrape time (on the daemon's thread); unset: none.
    std::function<std::vector<DiscoveryStatus>()> discovery;
};

std::string render(const std::vector<std::shared_ptr<WorkerStats>>& workers,
                   const config::Config& cfg, const session::Runtime& rt, const DaemonCounters& daemon);

}  // namespace xs::metrics
