// The run's report: counts, errors by kind, latency series, phases, rates and the watched
// processes; rendered as a readable summary or as JSON (--json). No sockets, no clocks.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "stats.hpp"

namespace xs::loadgen {

struct ProcSummary {
    std::string name;
    int pid = 0;
    double cpu_s_total = 0;     // CPU seconds over the whole run
    double cpu_s_window = 0;    // CPU seconds inside the measured window
    double cpu_pct_avg = 0;     // over the run, 100 = one core
    double cpu_pct_max = 0;     // highest single sample
    double rss_mb_start = 0;    // first sample (before any client connected)
    double rss_mb_window_end = 0;
    double rss_mb_max = 0;
    bool vanished = false;      // the process ended during the run
};

struct PhaseMark {
    std::string name;
    double at_s = 0;            // seconds since the start of the run
};

struct Report {
    std::string scenario;
    std::string label;
    std::vector<std::pair<std::string, std::string>> settings;  // echoed parameters
    double wall_s = 0;
    double window_start_s = 0, window_end_s = 0;   // the measured window (storm, steady phase)
    bool aborted = false;                          // hit --max-time
    stats::Counters counts;
    stats::Counters errors;
    std::map<std::string, stats::LatencySeries> latency;
    std::map<std::string, double> rates;
    std::vector<PhaseMark> phases;
    std::vector<ProcSummary> procs;

    std::string text() const;
    std::string json() const;
};

}  // namespace xs::loadgen
