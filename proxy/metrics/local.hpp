// Counters written by exactly one thread (a worker's loop) and read by the scraper. The writer
// does a relaxed load and store (no locked read-modify-write on the hot path); the reader sees
// a value that is at most one update old.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace xs::metrics {

class LocalCounter {
public:
    void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    uint64_t get() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

class LocalGauge {
public:
    void add(int64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    int64_t get() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<int64_t> v_{0};
};

// Latency histogram with fixed bounds (seconds), shared by every *_seconds family.
inline constexpr std::array<double, 14> kLatencyBounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class LocalHistogram {
public:
    void observe(double seconds) {
        std::size_t i = 0;
        while (i < kLatencyBounds.size() && seconds > kLatencyBounds[i]) ++i;
        buckets_[i].add();
        sum_us_.add(static_cast<uint64_t>(seconds * 1e6));
    }
    // Non-cumulative count of bucket i (the last one is +Inf).
    uint64_t bucket(std::size_t i) const { return buckets_[i].get(); }
    double sum() const { return static_cast<double>(sum_us_.get()) / 1e6; }

private:
    std::array<LocalCounter, kLatencyBounds.size() + 1> buckets_;
    LocalCounter sum_us_;
};

}  // namespace xs::metrics
