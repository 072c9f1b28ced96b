// Shared by the HTTP and BOSH fuzz targets: the chunk lengths of the two fuzzer-chosen splits
// (as fuzz_stream_header makes them).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace xs::fuzz {

// Split A: the byte at each chunk's start chooses the chunk's length.
inline std::vector<std::size_t> split_a(std::string_view in) {
    std::vector<std::size_t> lens;
    for (std::size_t at = 0; at < in.size();) {
        std::size_t n = 1 + (static_cast<unsigned char>(in[at]) * 7u + at) % 23u;
        lens.push_back(n);
        at += n;
    }
    return lens;
}

// Split B: from a splitmix64 generator seeded by the input's FNV-1a hash.
inline std::vector<std::size_t> split_b(std::string_view in) {
    std::uint64_t x = 1469598103934665603ull;
    for (unsigned char c : in) x = (x ^ c) * 1099511628211ull;
    std::vector<std::size_t> lens;
    for (std::size_t at = 0; at < in.size();) {
        x += 0x9E3779B97F4A7C15ull;
        std::uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        std::size_t n = 1 + z % 64;
        lens.push_back(n);
        at += n;
    }
    return lens;
}

inline std::vector<std::size_t> ones(std::string_view in) {
    return std::vector<std::size_t>(in.size(), 1);
}

// Feeds `in` to feed(piece) in chunks of the given lengths (the rest in one piece).
template <class Feed>
void feed_chunks(std::string_view in, const std::vector<std::size_t>& lens, Feed&& feed) {
    std::size_t at = 0;
    for (std::size_t n : lens) {
        if (at >= in.size()) break;
        n = n < in.size() - at ? n : in.size() - at;
        feed(in.substr(at, n));
        at += n;
    }
    if (at < in.size()) feed(in.substr(at));
}

}  // namespace xs::fuzz
