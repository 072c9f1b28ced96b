// libFuzzer target for routing::ClientHelloSniffer. Seeds: tests/fuzz/corpus/fuzz_client_hello/,
// real ClientHellos (some re-cut into many records) written by make_client_hello_corpus.py.
// Standalone build and run, from the repo root (scripts/fuzz.sh builds every target):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//       tests/fuzz/fuzz_client_hello.cpp routing/client_hello.cpp -o /tmp/fuzz_client_hello
//   /tmp/fuzz_client_hello -max_total_time=300 /tmp/corpus tests/fuzz/corpus/fuzz_client_hello
//
// Beyond "no crash, no sanitizer report", it checks the sniffer's contract on every input:
//   - the verdict (status, reason, detail, bytes seen, decoded fields) is the same whether the input
//     is fed whole or in pieces whose sizes come from the input itself;
//   - no verdict is reached past the bound, and Done reports consumed <= bytes fed;
//   - a Done hello re-fed alone (its first `consumed` bytes) gives the same Done.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "routing/client_hello.hpp"

namespace {

using xs::routing::ClientHelloSniffer;
using xs::routing::HelloStatus;

bool same(const ClientHelloSniffer& a, const ClientHelloSniffer& b) {
    if (a.status() != b.status() || a.bytes_seen() != b.bytes_seen() || a.detail() != b.detail())
        return false;
    if (a.status() == HelloStatus::Reject) return a.reject() == b.reject();
    if (a.status() != HelloStatus::Done) return true;
    const auto& x = a.info();
    const auto& y = b.info();
    return x.sni == y.sni && x.has_sni == y.has_sni && x.alpn == y.alpn &&
           x.supported_versions == y.supported_versions && x.legacy_version == y.legacy_version &&
           x.record_version == y.record_version && x.records == y.records &&
           x.consumed == y.consumed && x.message_length == y.message_length;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The whole input is fed; its last byte also picks the bound: below 0x80 (real hellos end in
    // padding or key-share bytes, often 0) the default 16 KiB, else a small one for TooLarge.
    unsigned char last = data[size - 1];
    std::size_t max = last < 0x80 ? 16 * 1024 : 64 + std::size_t{last & 0x7Fu} * 32;
    std::string_view in(reinterpret_cast<const char*>(data), size);

    ClientHelloSniffer whole(max);
    whole.feed(in);

    ClientHelloSniffer pieces(max);
    std::size_t at = 0, k = 0;
    while (at < in.size()) {
        std::size_t n = 1 + static_cast<unsigned char>(in[k++ % in.size()]) % 97;
        n = std::min(n, in.size() - at);
        pieces.feed(in.substr(at, n));
        at += n;
    }
    if (!same(whole, pieces)) std::abort();
    if (whole.status() != HelloStatus::NeedMore && whole.bytes_seen() > max) std::abort();
    if (whole.status() == HelloStatus::Done) {
        if (whole.info().consumed > in.size()) std::abort();
        ClientHelloSniffer exact(max);
        exact.feed(in.substr(0, whole.info().consumed));
        if (!same(whole, exact)) std::abort();
    }
    return 0;
}
