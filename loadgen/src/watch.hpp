// --watch NAME=PID: samples each process's CPU (utime+stime of all its threads) and resident
// memory from /proc several times a second, plus the load generator itself and the whole
// machine ("machine": busy CPU of all cores from /proc/stat, to see load nobody watched);
// writes the samples as CSV and CPU per process over time as an SVG chart.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/chart.hpp"
#include "core/report.hpp"

namespace xs::loadgen {

class Watcher {
public:
    Watcher(uv_loop_t* loop, const std::vector<std::pair<std::string, int>>& procs,
            double interval_s, std::uint64_t t0_us);
    void start();
    void stop();
    void sample();
    void mark_window_start();
    void mark_window_end();
    std::vector<ProcSummary> summaries() const;
    bool write_csv(const std::string& path) const;
    bool write_svg(const std::string& path, const std::string& title,
                   const std::vector<chart::Marker>& markers) const;

private:
    struct Sample {
        double t;
        double cpu_pct;
        double rss_mb;
    };
    struct Proc {
        std::string name;
        int pid = 0;
        bool gone = false;
        bool seen = false;
        std::uint64_t first_ticks = 0, last_ticks = 0, win_start_ticks = 0, win_end_ticks = 0;
        bool win_started = false, win_ended = false;
        double first_t = 0, last_t = 0;
        double rss_start = 0, rss_win_end = 0, rss_max = 0, cpu_max = 0;
        std::vector<Sample> samples;
    };
    static void on_timer(uv_timer_t* t);

    uv_timer_t timer_{};
    double interval_s_;
    std::uint64_t t0_us_;
    long hz_;
    long page_kb_;
    std::vector<Proc> procs_;
};

}  // namespace xs::loadgen
