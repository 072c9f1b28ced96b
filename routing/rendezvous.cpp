#include "routing/rendezvous.hpp"

#include <algorithm>
#include <array>

namespace xs::routing {

namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

uint64_t fnv1a(uint64_t h, std::string_view s) {
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= kFnvPrime;
    }
    return h;
}

// splitmix64's finaliser: spreads FNV's weak high-order mixing over all 64 bits.
uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

}  // namespace

// FNV-1a 64 over key, one 0xFF separator (never part of valid UTF-8, so "ab"+"c" and "a"+"bc"
// cannot collide), and the backend name, then the splitmix64 finaliser. Fixed forever: changing
// it reshuffles every hashed domain on upgrade (the unit tests pin a few results).
uint64_t rendezvous_score(std::string_view key, std::string_view backend_name) {
    uint64_t h = fnv1a(kFnvOffset, key);
    h ^= 0xFFu;
    h *= kFnvPrime;
    return mix(fnv1a(h, backend_name));
}

std::vector<std::size_t> rendezvous_order(std::string_view key,
                                          const std::vector<std::string>& names) {
    const std::size_t n = names.size();
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    // Scores live on the stack for the usual handful of backends: the returned vector is the
    // only allocation then.
    constexpr std::size_t kInline = 32;
    std::array<uint64_t, kInline> inline_scores;
    std::vector<uint64_t> heap_scores;
    uint64_t* scores = inline_scores.data();
    if (n > kInline) {
        heap_scores.resize(n);
        scores = heap_scores.data();
    }
    for (std::size_t i = 0; i < n; ++i) scores[i] = rendezvous_score(key, names[i]);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (scores[a] != scores[b]) return scores[a] > scores[b];
        if (names[a] != names[b]) return names[a] < names[b];
        return a < b;
    });
    return order;
}

}  // namespace xs::routing
