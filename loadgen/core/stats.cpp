#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace xs::loadgen::stats {

void LatencySeries::add_us(std::uint64_t us) {
    constexpr std::uint64_t cap = std::numeric_limits<std::uint32_t>::max();
    samples_.push_back(static_cast<std::uint32_t>(std::min(us, cap)));
    sorted_ = false;
}

void LatencySeries::sort() const {
    if (!sorted_) {
        std::sort(samples_.begin(), samples_.end());
        sorted_ = true;
    }
}

double LatencySeries::percentile_ms(double q) const {
    if (samples_.empty()) return 0;
    sort();
    q = std::clamp(q, 0.0, 100.0);
    // Nearest rank: the smallest sample with at least q% of the samples at or below it.
    auto n = samples_.size();
    auto rank = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(n)));
    if (rank == 0) rank = 1;
    return samples_[std::min(rank, n) - 1] / 1000.0;
}

Summary LatencySeries::summary() const {
    Summary s;
    s.count = samples_.size();
    if (s.count == 0) return s;
    sort();
    double sum = 0;
    for (auto v : samples_) sum += v;
    s.min = samples_.front() / 1000.0;
    s.max = samples_.back() / 1000.0;
    s.mean = sum / static_cast<double>(s.count) / 1000.0;
    s.p50 = percentile_ms(50);
    s.p90 = percentile_ms(90);
    s.p99 = percentile_ms(99);
    return s;
}

void LatencySeries::merge(const LatencySeries& other) {
    samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
    sorted_ = samples_.empty();
}

void Counters::add(std::string_view kind, std::uint64_t n) {
    auto it = m_.find(kind);
    if (it == m_.end()) m_.emplace(std::string(kind), n);
    else it->second += n;
}

std::uint64_t Counters::get(std::string_view kind) const {
    auto it = m_.find(kind);
    return it == m_.end() ? 0 : it->second;
}

std::uint64_t Counters::total() const {
    std::uint64_t t = 0;
    for (const auto& [k, v] : m_) t += v;
    return t;
}

std::optional<ProcStat> parse_proc_stat(std::string_view line) {
    // "pid (comm) state ppid ..." - comm may contain spaces and parentheses: split at the last ')'.
    auto rp = line.rfind(')');
    if (rp == std::string_view::npos) return std::nullopt;
    std::string_view rest = line.substr(rp + 1);
    // Fields after comm start at field 3 (state). utime = 14, stime = 15, rss = 24.
    std::vector<std::string_view> f;
    std::size_t i = 0;
    while (i < rest.size() && f.size() < 24) {
        while (i < rest.size() && rest[i] == ' ') ++i;
        std::size_t j = i;
        while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
        if (j > i) f.push_back(rest.substr(i, j - i));
        i = j + 1;
    }
    auto field = [&](int n) -> std::optional<std::uint64_t> {
        std::size_t idx = static_cast<std::size_t>(n - 3);
        if (idx >= f.size()) return std::nullopt;
        std::uint64_t v = 0;
        for (char c : f[idx]) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        return v;
    };
    auto ut = field(14), st = field(15), rss = field(24);
    if (!ut || !st || !rss) return std::nullopt;
    return ProcStat{*ut + *st, *rss};
}

std::optional<MachineStat> parse_machine_stat(std::string_view text) {
    if (!text.starts_with("cpu ")) return std::nullopt;
    std::string_view line = text.substr(4, text.find('\n') == std::string_view::npos ? text.npos : text.find('\n') - 4);
    std::uint64_t v[10] = {};
    int n = 0;
    std::size_t i = 0;
    while (i < line.size() && n < 10) {
        while (i < line.size() && line[i] == ' ') ++i;
        if (i >= line.size()) break;
        std::uint64_t x = 0;
        bool digits = false;
        while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
            x = x * 10 + static_cast<std::uint64_t>(line[i++] - '0');
            digits = true;
        }
        if (!digits) return std::nullopt;
        v[n++] = x;
    }
    if (n < 8) return std::nullopt;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    MachineStat m;
    m.busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    m.total_ticks = m.busy_ticks + v[3] + v[4];
    return m;
}

double cpu_percent(std::uint64_t before, std::uint64_t after, double dt_s, long hz) {
    if (dt_s <= 0 || hz <= 0 || after < before) return 0;
    return 100.0 * static_cast<double>(after - before) / static_cast<double>(hz) / dt_s;
}

}  // namespace xs::loadgen::stats
