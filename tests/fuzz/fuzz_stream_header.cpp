// libFuzzer target: the stream-header sniffer (routing/stream_header_sniffer).
//
// The input is the client's byte stream. For each input the sniffer runs
//   - with an unbounded max_header_bytes, fed whole: the reference outcome;
//   - byte by byte, checking that it stays NeedMore (and counts every byte) until exactly the
//     byte that decided the reference verdict, and ignores bytes fed after a verdict;
//   - in two fuzzer-chosen splits: chunk lengths read from the input's own bytes (so every
//     mutation of the input also moves the cuts), and cuts drawn from a generator seeded by the
//     input's hash;
//   - with a max_header_bytes the input chooses (its first byte scaled to its length) and with
//     the default 4096, predicting the result from the reference: the same verdict when it was
//     decided within the limit, else policy-violation at exactly byte number max_header_bytes.
// Every split must give the same outcome (status, condition, detail, header fields, consumed,
// bytes seen); a Done header must end with its '>' inside the bytes fed (consumed <= fed); the
// detail (quoted in logs and <text/>) must be valid UTF-8, and free of control characters as the
// sniffer's header promises.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "routing/stream_header_sniffer.hpp"

using namespace xs::routing;

namespace {

struct Outcome {
    SniffStatus status = SniffStatus::NeedMore;
    StreamCondition condition = StreamCondition::NotWellFormed;
    std::string detail;
    bool has_to = false;
    std::string to, content_ns, prefix, version;
    std::size_t consumed = 0;
    std::size_t seen = 0;
    bool operator==(const Outcome&) const = default;
};

const char* status_name(SniffStatus s) {
    switch (s) {
    case SniffStatus::NeedMore: return "NeedMore";
    case SniffStatus::Done: return "Done";
    case SniffStatus::Reject: return "Reject";
    case SniffStatus::TlsClientHello: return "TlsClientHello";
    }
    return "?";
}

std::string describe(const Outcome& o) {
    std::string s = status_name(o.status);
    if (o.status == SniffStatus::Reject)
        s += std::string(" ") + std::string(to_string(o.condition)) + " '" + o.detail + "'";
    if (o.status == SniffStatus::Done)
        s += " to='" + o.to + "' ns='" + o.content_ns + "' prefix='" + o.prefix +
             "' consumed=" + std::to_string(o.consumed);
    return s + " seen=" + std::to_string(o.seen);
}

Outcome outcome_of(const StreamHeaderSniffer& s) {
    Outcome o;
    o.status = s.status();
    o.seen = s.bytes_seen();
    if (o.status == SniffStatus::Reject) {
        o.condition = s.condition();
        o.detail = s.detail();
    }
    if (o.status == SniffStatus::Done) {
        const StreamHeader& h = s.header();
        o.has_to = h.has_to;
        o.to = h.to;
        o.content_ns = h.content_ns;
        o.prefix = h.prefix;
        o.version = h.version;
        o.consumed = h.consumed;
    }
    return o;
}

// Feeds `in` in chunks of the given lengths (the rest in one piece); each feed's return value
// must be the sniffer's status.
Outcome run_chunks(std::string_view in, const std::vector<std::size_t>& lens, std::size_t max) {
    StreamHeaderSniffer s(max);
    std::size_t at = 0;
    for (std::size_t n : lens) {
        if (at >= in.size()) break;
        n = std::min(n, in.size() - at);
        SniffStatus st = s.feed(in.substr(at, n));
        XS_FUZZ_CHECK(st == s.status(), "feed() returned something else than status()", in);
        at += n;
    }
    if (at < in.size()) {
        SniffStatus st = s.feed(in.substr(at));
        XS_FUZZ_CHECK(st == s.status(), "feed() returned something else than status()", in);
    }
    return outcome_of(s);
}

// Valid UTF-8; with allow_controls = false also free of C0 and C1 control characters and DEL.
bool valid_utf8(std::string_view s, bool allow_controls) {
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if (!allow_controls && (c < 0x20 || c == 0x7F)) return false;
            ++i;
            continue;
        }
        const int n = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
                      : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (n < 0 || i + static_cast<std::size_t>(n) >= s.size()) return false;
        std::uint32_t cp = c & (0x3F >> n);
        for (int k = 1; k <= n; ++k) {
            unsigned char d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        if (!allow_controls && cp >= 0x80 && cp < 0xA0) return false;  // C1 controls
        i += static_cast<std::size_t>(n) + 1;
    }
    return true;
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// What a sniffer bounded by `max` must answer, given the unbounded reference.
Outcome predict_with_max(const Outcome& ref, std::size_t fed, std::size_t max) {
    const bool decided = ref.status != SniffStatus::NeedMore;
    if (decided ? ref.seen <= max : fed < max) return ref;
    Outcome o;
    o.status = SniffStatus::Reject;
    o.condition = StreamCondition::PolicyViolation;
    o.seen = max;
    o.detail = "no complete stream header within max_header_bytes = " + std::to_string(max) +
               " (at byte " + std::to_string(max) + ")";
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

    const Outcome ref = run_chunks(in, {}, kUnbounded);
    const std::string ref_text = describe(ref);

    // Basic promises of the reference outcome.
    XS_FUZZ_CHECK(ref.seen <= size, "more bytes seen than fed: " + ref_text, in);
    if (ref.status == SniffStatus::NeedMore)
        XS_FUZZ_CHECK(ref.seen == size, "NeedMore without examining every byte: " + ref_text, in);
    else
        XS_FUZZ_CHECK(ref.seen >= 1, "a verdict before any byte: " + ref_text, in);
    if (ref.status == SniffStatus::Done) {
        XS_FUZZ_CHECK(ref.consumed == ref.seen && ref.consumed <= size,
                      "consumed is not the bytes up to the header's end: " + ref_text, in);
        XS_FUZZ_CHECK(in[ref.consumed - 1] == '>', "the header does not end with '>': " + ref_text,
                      in);
        XS_FUZZ_CHECK(ref.has_to || ref.to.empty(), "a 'to' value without has_to", in);
    }
    if (ref.status == SniffStatus::Reject) {
        const std::string tail = " (at byte " + std::to_string(ref.seen) + ")";
        XS_FUZZ_CHECK(ref.detail.size() > tail.size() &&
                          ref.detail.compare(ref.detail.size() - tail.size(), tail.size(), tail) == 0,
                      "detail does not end with the deciding byte's number: " + ref_text, in);
        XS_FUZZ_CHECK(valid_utf8(ref.detail, true), "detail is not valid UTF-8: " + ref_text, in);
        // The proxy logs the detail raw: a control character from a value (&#10;, &#x82;)
        // would let a client forge log lines (regressions/fuzz_stream_header/detail-*).
        XS_FUZZ_CHECK(valid_utf8(ref.detail, false),
                      "detail has control characters (logged raw): " + ref_text, in);
    }
    if (ref.status == SniffStatus::TlsClientHello)
        XS_FUZZ_CHECK(ref.seen == 1 && data[0] == 0x16, "TLS verdict not on a first 0x16 byte", in);

    // Byte by byte: NeedMore until exactly the deciding byte, then deaf.
    {
        StreamHeaderSniffer s(kUnbounded);
        for (std::size_t i = 0; i < size; ++i) {
            SniffStatus st = s.feed(in.substr(i, 1));
            if (i + 1 < ref.seen || (ref.status == SniffStatus::NeedMore)) {
                XS_FUZZ_CHECK(st == SniffStatus::NeedMore,
                              "verdict at byte " + std::to_string(i + 1) + ", earlier than the "
                              "reference's " + ref_text, in);
                XS_FUZZ_CHECK(s.bytes_seen() == i + 1, "bytes_seen() does not count every byte",
                              in);
            } else {
                XS_FUZZ_CHECK(s.bytes_seen() == ref.seen,
                              "bytes after the verdict were counted: " + ref_text, in);
            }
        }
        const Outcome bb = outcome_of(s);
        XS_FUZZ_CHECK(bb == ref, "byte by byte: " + describe(bb) + " vs whole: " + ref_text, in);
        // Feeding more after a verdict changes nothing.
        if (ref.status != SniffStatus::NeedMore) {
            s.feed("<stream:stream>");
            XS_FUZZ_CHECK(outcome_of(s) == ref, "a finished sniffer changed on more bytes", in);
        }
    }

    // Fuzzer-chosen splits 1: the byte at each chunk's start chooses the chunk's length.
    {
        std::vector<std::size_t> lens;
        for (std::size_t at = 0; at < size;) {
            std::size_t n = 1 + (data[at] * 7u + at) % 23u;
            lens.push_back(n);
            at += n;
        }
        const Outcome o = run_chunks(in, lens, kUnbounded);
        XS_FUZZ_CHECK(o == ref, "split A: " + describe(o) + " vs whole: " + ref_text, in);
    }
    // Splits 2: from a generator seeded by the input's hash (splitmix64).
    {
        std::uint64_t x = fnv1a(in);
        std::vector<std::size_t> lens;
        for (std::size_t at = 0; at < size;) {
            x += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            std::size_t n = 1 + z % 64;
            lens.push_back(n);
            at += n;
        }
        const Outcome o = run_chunks(in, lens, kUnbounded);
        XS_FUZZ_CHECK(o == ref, "split B: " + describe(o) + " vs whole: " + ref_text, in);
    }

    // max_header_bytes: the default and one the input chooses.
    const std::size_t maxes[] = {4096, size ? 1 + (data[0] * (size + 1)) / 256 : 1};
    for (std::size_t max : maxes) {
        const Outcome want = predict_with_max(ref, size, max);
        const Outcome whole = run_chunks(in, {}, max);
        XS_FUZZ_CHECK(whole == want, "max_header_bytes=" + std::to_string(max) + ": got " +
                                         describe(whole) + ", expected " + describe(want), in);
        std::vector<std::size_t> ones(size, 1);
        const Outcome bb = run_chunks(in, ones, max);
        XS_FUZZ_CHECK(bb == want, "max_header_bytes=" + std::to_string(max) + " byte by byte: " +
                                      describe(bb) + ", expected " + describe(want), in);
    }
    return 0;
}
