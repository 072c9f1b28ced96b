// Minimal thread-safe logging to stderr: one line per call, written with a single write(2).
#pragma once
#include <sstream>
#include <string_view>

namespace xs::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level l);
Level level();
bool parse_level(std::string_view s, Level& out);
void write(Level l, std::string_view line);

template <typename... Args>
void emit(Level l, const Args&... args) {
    if (l < level()) return;
    std::ostringstream os;
    (os << ... << args);
    write(l, os.str());
}

template <typename... Args> void debug(const Args&... a) { emit(Level::Debug, a...); }
template <typename... Args> void info(const Args&... a) { emit(Level::Info, a...); }
template <typename... Args> void warn(const Args&... a) { emit(Level::Warn, a...); }
template <typename... Args> void error(const Args&... a) { emit(Level::Error, a...); }

// An impossible state or out-of-memory: log at any level, then abort (ARCHITECTURE.md, error
// policy). Never for anything a peer or the config file can cause.
[[noreturn]] void die(std::string_view what);

}  // namespace xs::log
