// Wall-clock time as the metrics export it (Unix seconds, with a fraction).
#pragma once
#include <chrono>

namespace xs::util {

inline double unix_now() {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace xs::util
