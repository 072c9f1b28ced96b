#include "watch.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "client.hpp"  // now_us
#include "core/stats.hpp"

namespace xs::loadgen {

namespace {

bool read_stat(int pid, stats::ProcStat& out) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return false;
    auto st = stats::parse_proc_stat(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!st) return false;
    out = *st;
    return true;
}

// The whole machine as one pseudo-process (pid 0): busy ticks of every core from /proc/stat,
// so that a report shows how much CPU went to processes nobody watched.
bool read_machine(stats::ProcStat& out) {
    int fd = ::open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return false;
    auto m = stats::parse_machine_stat(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!m) return false;
    out.cpu_ticks = m->busy_ticks;
    out.rss_pages = 0;
    return true;
}

}  // namespace

Watcher::Watcher(uv_loop_t* loop, const std::vector<std::pair<std::string, int>>& procs,
                 double interval_s, std::uint64_t t0_us)
    : interval_s_(interval_s), t0_us_(t0_us) {
    hz_ = sysconf(_SC_CLK_TCK);
    page_kb_ = sysconf(_SC_PAGESIZE) / 1024;
    auto add = [&](const std::string& name, int pid) {
        Proc p;
        p.name = name;
        p.pid = pid;
        procs_.push_back(std::move(p));
    };
    add("machine", 0);
    add("loadgen", static_cast<int>(getpid()));
    for (const auto& [name, pid] : procs) add(name, pid);
    uv_timer_init(loop, &timer_);
    timer_.data = this;
}

void Watcher::start() {
    sample();
    auto ms = static_cast<std::uint64_t>(interval_s_ * 1000.0 + 0.5);
    uv_timer_start(&timer_, on_timer, ms, ms);
}

void Watcher::stop() {
    sample();
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void Watcher::on_timer(uv_timer_t* t) { static_cast<Watcher*>(t->data)->sample(); }

void Watcher::sample() {
    double t = static_cast<double>(now_us() - t0_us_) / 1e6;
    for (Proc& p : procs_) {
        if (p.gone) continue;
        stats::ProcStat st;
        if (!(p.pid == 0 ? read_machine(st) : read_stat(p.pid, st))) {
            p.gone = true;  // ended, or a PID that never existed: reported as vanished
            continue;
        }
        double rss = static_cast<double>(st.rss_pages * static_cast<std::uint64_t>(page_kb_)) / 1024.0;
        if (!p.seen) {
            p.seen = true;
            p.first_ticks = p.last_ticks = st.cpu_ticks;
            p.first_t = p.last_t = t;
            p.rss_start = rss;
            p.samples.push_back({t, 0, rss});
        } else if (t - p.last_t >= interval_s_ * 0.5) {  // no near-duplicate samples (at stop)
            double cpu = stats::cpu_percent(p.last_ticks, st.cpu_ticks, t - p.last_t, hz_);
            p.samples.push_back({t, cpu, rss});
            p.cpu_max = std::max(p.cpu_max, cpu);
            p.last_ticks = st.cpu_ticks;
            p.last_t = t;
        }
        p.rss_max = std::max(p.rss_max, rss);
        if (p.win_started && !p.win_ended) p.rss_win_end = rss;
    }
}

// Window marks read the counters now but add no chart sample: a sample a few milliseconds after
// the previous one would draw a spurious 0 % dip.
void Watcher::mark_window_start() {
    for (Proc& p : procs_) {
        stats::ProcStat st;
        bool ok = !p.gone && (p.pid == 0 ? read_machine(st) : read_stat(p.pid, st));
        p.win_start_ticks = ok ? st.cpu_ticks : p.last_ticks;
        p.win_started = true;
        p.rss_win_end = p.samples.empty() ? 0 : p.samples.back().rss_mb;
    }
}

void Watcher::mark_window_end() {
    for (Proc& p : procs_) {
        if (!p.win_started || p.win_ended) continue;
        stats::ProcStat st;
        bool ok = !p.gone && (p.pid == 0 ? read_machine(st) : read_stat(p.pid, st));
        p.win_end_ticks = ok ? st.cpu_ticks : p.last_ticks;
        p.win_ended = true;
        if (ok && p.pid != 0)
            p.rss_win_end = static_cast<double>(st.rss_pages * static_cast<std::uint64_t>(page_kb_)) / 1024.0;
        else if (!p.samples.empty())
            p.rss_win_end = p.samples.back().rss_mb;
    }
}

std::vector<ProcSummary> Watcher::summaries() const {
    std::vector<ProcSummary> out;
    for (const Proc& p : procs_) {
        ProcSummary s;
        s.name = p.name;
        s.pid = p.pid;
        s.vanished = p.gone;
        s.cpu_s_total = static_cast<double>(p.last_ticks - p.first_ticks) / static_cast<double>(hz_);
        std::uint64_t we = p.win_ended ? p.win_end_ticks : p.last_ticks;
        if (p.win_started) s.cpu_s_window = static_cast<double>(we - p.win_start_ticks) / static_cast<double>(hz_);
        double span = p.last_t - p.first_t;
        s.cpu_pct_avg = span > 0 ? 100.0 * s.cpu_s_total / span : 0;
        s.cpu_pct_max = p.cpu_max;
        s.rss_mb_start = p.rss_start;
        s.rss_mb_window_end = p.rss_win_end;
        s.rss_mb_max = p.rss_max;
        out.push_back(s);
    }
    return out;
}

bool Watcher::write_csv(const std::string& path) const {
    std::ofstream f(path);
    if (!f) return false;
    f << "time_s,name,pid,cpu_percent,rss_mb\n";
    for (const Proc& p : procs_)
        for (const Sample& s : p.samples) {
            char line[200];
            std::snprintf(line, sizeof line, "%.3f,%s,%d,%.1f,%.1f\n", s.t, p.name.c_str(), p.pid,
                          s.cpu_pct, s.rss_mb);
            f << line;
        }
    return static_cast<bool>(f);
}

bool Watcher::write_svg(const std::string& path, const std::string& title,
                        const std::vector<chart::Marker>& markers) const {
    std::vector<chart::Series> series;
    for (const Proc& p : procs_) {
        chart::Series s;
        s.name = p.name;
        for (std::size_t i = 1; i < p.samples.size(); ++i)
            s.points.emplace_back(p.samples[i].t, p.samples[i].cpu_pct);
        series.push_back(std::move(s));
    }
    chart::Spec spec;
    spec.title = title;
    std::ofstream f(path);
    if (!f) return false;
    f << chart::line_chart(spec, series, markers);
    return static_cast<bool>(f);
}

}  // namespace xs::loadgen
