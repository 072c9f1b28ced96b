// Measurements: latency series (every sample kept, exact nearest-rank percentiles), counters by
// kind, and the /proc parsing behind --watch. No sockets, no clocks: callers pass times in.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xs::loadgen::stats {

struct Summary {
    std::size_t count = 0;
    double min = 0, mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;  // milliseconds
};

// Samples in microseconds (uint32: up to 71 minutes). A million samples cost 4 MB, so every
// sample is kept and percentiles are exact.
class LatencySeries {
public:
    void add_us(std::uint64_t us);
    void add_ms(double ms) { add_us(ms <= 0 ? 0 : static_cast<std::uint64_t>(ms * 1000.0 + 0.5)); }
    std::size_t count() const { return samples_.size(); }
    // Nearest-rank percentile (q in [0,100]) in milliseconds; 0 when empty.
    double percentile_ms(double q) const;
    Summary summary() const;
    void merge(const LatencySeries& other);
    void clear() { samples_.clear(); sorted_ = true; }

private:
    void sort() const;
    mutable std::vector<std::uint32_t> samples_;
    mutable bool sorted_ = true;
};

// Counts by kind (error kinds, stanza kinds), printed in name order.
class Counters {
public:
    void add(std::string_view kind, std::uint64_t n = 1);
    std::uint64_t get(std::string_view kind) const;
    std::uint64_t total() const;
    const std::map<std::string, std::uint64_t, std::less<>>& all() const { return m_; }

private:
    std::map<std::string, std::uint64_t, std::less<>> m_;
};

// One /proc/PID/stat line -> CPU ticks (utime + stime, all threads) and RSS pages.
struct ProcStat {
    std::uint64_t cpu_ticks = 0;
    std::uint64_t rss_pages = 0;
};
std::optional<ProcStat> parse_proc_stat(std::string_view line);

// The aggregate "cpu" line of /proc/stat -> busy ticks (user, nice, system, irq, softirq, steal)
// and all ticks (busy + idle + iowait), summed over every core.
struct MachineStat {
    std::uint64_t busy_ticks = 0;
    std::uint64_t total_ticks = 0;
};
std::optional<MachineStat> parse_machine_stat(std::string_view proc_stat);

// CPU percent (100 = one core) between two samples `dt_s` seconds apart.
double cpu_percent(std::uint64_t ticks_before, std::uint64_t ticks_after, double dt_s,
                   long ticks_per_second);

}  // namespace xs::loadgen::stats
