#include "report.hpp"

#include <cstdio>

#include "json.hpp"

namespace xs::loadgen {

namespace {

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

}  // namespace

std::string Report::text() const {
    std::string o;
    o += "== xmpp-shard-loadgen: " + scenario + (label.empty() ? "" : " (" + label + ")") + "\n";
    for (const auto& [k, v] : settings) o += "  " + k + " = " + v + "\n";
    o += "wall time " + fmt("%.2f", wall_s) + " s; measured window " + fmt("%.2f", window_start_s) +
         " .. " + fmt("%.2f", window_end_s) + " s" + (aborted ? "  ** ABORTED at --max-time **" : "") +
         "\n";
    o += "counts:\n";
    for (const auto& [k, v] : counts.all()) o += "  " + k + " " + std::to_string(v) + "\n";
    o += "errors: " + std::to_string(errors.total()) + "\n";
    for (const auto& [k, v] : errors.all()) o += "  " + k + " " + std::to_string(v) + "\n";
    o += "latency (ms)            count      p50      p90      p99      max\n";
    for (const auto& [k, s] : latency) {
        auto m = s.summary();
        char line[160];
        std::snprintf(line, sizeof line, "  %-20s %8zu %8.2f %8.2f %8.2f %8.2f\n", k.c_str(), m.count,
                      m.p50, m.p90, m.p99, m.max);
        o += line;
    }
    if (!rates.empty()) {
        o += "rates:\n";
        for (const auto& [k, v] : rates) o += "  " + k + " " + fmt("%.1f", v) + "\n";
    }
    if (!procs.empty()) {
        o += "processes               cpu s  window s  avg %  max %  rss MB start/end/max\n";
        for (const auto& p : procs) {
            char line[200];
            std::snprintf(line, sizeof line, "  %-18s %9.2f %9.2f %6.1f %6.1f  %.1f/%.1f/%.1f%s\n",
                          p.name.c_str(), p.cpu_s_total, p.cpu_s_window, p.cpu_pct_avg,
                          p.cpu_pct_max, p.rss_mb_start, p.rss_mb_window_end, p.rss_mb_max,
                          p.vanished ? " (ended)" : "");
            o += line;
        }
    }
    if (!phases.empty()) {
        o += "phases:";
        for (const auto& p : phases) o += " " + p.name + "@" + fmt("%.2f", p.at_s);
        o += "\n";
    }
    return o;
}

std::string Report::json() const {
    JsonWriter j;
    j.begin_object();
    j.field("scenario", scenario);
    j.field("label", label);
    j.key("settings").begin_object();
    for (const auto& [k, v] : settings) j.field(k, v);
    j.end_object();
    j.field("wall_s", wall_s);
    j.field("window_start_s", window_start_s);
    j.field("window_end_s", window_end_s);
    j.field("aborted", aborted);
    j.key("counts").begin_object();
    for (const auto& [k, v] : counts.all()) j.field(k, v);
    j.end_object();
    j.field("errors_total", errors.total());
    j.key("errors").begin_object();
    for (const auto& [k, v] : errors.all()) j.field(k, v);
    j.end_object();
    j.key("latency_ms").begin_object();
    for (const auto& [k, s] : latency) {
        auto m = s.summary();
        j.key(k).begin_object();
        j.field("count", static_cast<std::uint64_t>(m.count));
        j.field("min", m.min).field("mean", m.mean).field("p50", m.p50);
        j.field("p90", m.p90).field("p99", m.p99).field("max", m.max);
        j.end_object();
    }
    j.end_object();
    j.key("rates").begin_object();
    for (const auto& [k, v] : rates) j.field(k, v);
    j.end_object();
    j.key("phases").begin_array();
    for (const auto& p : phases) {
        j.begin_object().field("name", p.name).field("at_s", p.at_s).end_object();
    }
    j.end_array();
    j.key("processes").begin_array();
    for (const auto& p : procs) {
        j.begin_object();
        j.field("name", p.name).field("pid", p.pid);
        j.field("cpu_s_total", p.cpu_s_total).field("cpu_s_window", p.cpu_s_window);
        j.field("cpu_pct_avg", p.cpu_pct_avg).field("cpu_pct_max", p.cpu_pct_max);
        j.field("rss_mb_start", p.rss_mb_start).field("rss_mb_window_end", p.rss_mb_window_end);
        j.field("rss_mb_max", p.rss_mb_max).field("vanished", p.vanished);
        j.end_object();
    }
    j.end_array();
    j.end_object();
    return j.str() + "\n";
}

}  // namespace xs::loadgen
