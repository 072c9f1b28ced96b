// Helpers for the sniffer tests: feed one input under many splits and compare the outcomes.
#pragma once
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "routing/stream_header_sniffer.hpp"

namespace xs::test {

// Everything observable about a finished (or unfinished) sniff.
struct Outcome {
    routing::SniffStatus status = routing::SniffStatus::NeedMore;
    routing::StreamCondition condition = routing::StreamCondition::NotWellFormed;  // if Reject
    std::string detail;
    bool has_to = false;
    std::string to, content_ns, prefix, version;
    std::size_t consumed = 0;
    std::size_t seen = 0;
    bool operator==(const Outcome&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Outcome& o);

// Feeds `input` cut at the given positions (ascending, inside the input).
Outcome sniff_split(std::string_view input, const std::vector<std::size_t>& cuts,
                    std::size_t max = 4096);
inline Outcome sniff(std::string_view input, std::size_t max = 4096) {
    return sniff_split(input, {}, max);
}

// Feeds `input` whole, byte by byte, at every single cut, and in many random splits (fixed
// seed), and requires the same outcome each time. Returns that outcome.
Outcome sniff_every_split(std::string_view input, std::size_t max = 4096);

}  // namespace xs::test
