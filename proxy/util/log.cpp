#include "util/log.hpp"

#include <cstdlib>
#include <string>

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <string>

namespace xs::log {
namespace {
std::atomic<Level> g_level{Level::Info};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view s, Level& out) {
    for (int i = 0; i < 4; ++i) {
        if (s == kNames[i]) {
            out = static_cast<Level>(i);
            return true;
        }
    }
    return false;
}

void write(Level l, std::string_view line) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char stamp[40];
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &t);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
    std::string out;
    out.reserve(line.size() + 48);
    out.append(stamp).append(" ").append(kNames[static_cast<int>(l)]).append(" ");
    out.append(line).push_back('\n');
    // One write per line so that lines from several workers never interleave.
    ssize_t rc = ::write(STDERR_FILENO, out.data(), out.size());
    (void)rc;
}

void die(std::string_view what) {
    write(Level::Error, std::string("fatal: ") + std::string(what));
    std::abort();
}

}  // namespace xs::log
