#include "sniffer_support.hpp"

#include <catch2/catch.hpp>
#include <random>

namespace xs::test {

using routing::SniffStatus;

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    static const char* kStatus[] = {"NeedMore", "Done", "Reject", "TlsClientHello"};
    os << "{" << kStatus[static_cast<int>(o.status)];
    if (o.status == SniffStatus::Reject)
        os << " " << routing::to_string(o.condition) << " '" << o.detail << "'";
    if (o.status == SniffStatus::Done)
        os << " to=" << (o.has_to ? "'" + o.to + "'" : "(none)") << " ns='" << o.content_ns
           << "' prefix='" << o.prefix << "' version='" << o.version
           << "' consumed=" << o.consumed;
    return os << " seen=" << o.seen << "}";
}

Outcome sniff_split(std::string_view input, const std::vector<std::size_t>& cuts,
                    std::size_t max) {
    routing::StreamHeaderSniffer s(max);
    std::size_t from = 0;
    SniffStatus last = SniffStatus::NeedMore;
    for (std::size_t cut : cuts) {
        last = s.feed(input.substr(from, cut - from));
        from = cut;
    }
    last = s.feed(input.substr(from));
    REQUIRE(last == s.status());
    Outcome o;
    o.status = s.status();
    o.seen = s.bytes_seen();
    if (o.status == SniffStatus::Reject) {
        o.condition = s.condition();
        o.detail = s.detail();
    }
    if (o.status == SniffStatus::Done) {
        const auto& h = s.header();
        o.has_to = h.has_to;
        o.to = h.to;
        o.content_ns = h.content_ns;
        o.prefix = h.prefix;
        o.version = h.version;
        o.consumed = h.consumed;
    }
    return o;
}

Outcome sniff_every_split(std::string_view input, std::size_t max) {
    const Outcome whole = sniff(input, max);
    INFO("input: " << input);

    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
    CHECK(sniff_split(input, cuts, max) == whole);  // byte by byte

    for (std::size_t i = 1; i < input.size(); ++i) {  // every two-piece split
        INFO("cut at " << i);
        CHECK(sniff_split(input, {i}, max) == whole);
    }

    std::mt19937 rng(20240611);  // fixed seed: reproducible splits
    for (int round = 0; round < 50; ++round) {
        cuts.clear();
        for (std::size_t at = 0; input.size() > 1;) {
            at += 1 + rng() % 9;
            if (at >= input.size()) break;
            cuts.push_back(at);
        }
        INFO("random round " << round);
        CHECK(sniff_split(input, cuts, max) == whole);
    }
    return whole;
}

}  // namespace xs::test
